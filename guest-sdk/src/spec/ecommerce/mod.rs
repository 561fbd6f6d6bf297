//! Segment's [Ecommerce v2 spec]: every event, with every property the spec names, as a
//! typed view (see the [parent module](crate::spec) for how views read and what they
//! keep).
//!
//! [`Ecommerce`] has one variant per event, chosen by the event's name (v1 names
//! included); each holds a view such as [`OrderCompleted`], whose `products` are
//! [`Product`]s. Single-product events (Product Viewed, Product Added, ...) hold their
//! product's properties in a `product` field. [`minor_units`] turns an amount into cents.
//!
//! [Ecommerce v2 spec]: https://segment.com/docs/connections/spec/ecommerce/v2/

mod browsing;
mod cart;
mod checkout;
mod coupons;
mod money;
mod order;
mod product;
mod sharing;
mod wishlist;

pub use browsing::{
    ProductListFiltered, ProductListViewed, ProductsSearched, PromotionClicked, PromotionViewed,
};
pub use cart::{CartViewed, ProductAdded, ProductClicked, ProductRemoved, ProductViewed};
pub use checkout::{
    CheckoutStarted, CheckoutStepCompleted, CheckoutStepViewed, PaymentInfoEntered,
};
pub use coupons::{CouponApplied, CouponDenied, CouponEntered, CouponRemoved};
pub use money::minor_units;
pub use order::{OrderCancelled, OrderCompleted, OrderRefunded, OrderUpdated};
pub use product::{Filter, Product, SearchQuery, Sort};
pub use sharing::{CartShared, ProductReviewed, ProductShared};
pub use wishlist::{
    ProductAddedToWishlist, ProductRemovedFromWishlist, WishlistProductAddedToCart,
};

use crate::spec::read::events;

events! {
    /// An Ecommerce v2 event, by name, as its typed view: `track.ecommerce()`.
    ///
    /// Each event is chosen by its spec name, its Ecommerce v1 name where it had one
    /// ("Completed Order"), the other names the spec documents ("Started Order" for
    /// "Checkout Started"), and the action-first form Segment's integrations accept
    /// ("Viewed Cart"), compared without regard to ASCII case, spaces and underscores.
    /// [`NAMES`](Self::NAMES) lists them.
    ///
    /// ```
    /// use segfn_sdk::{Error, Track};
    /// use segfn_sdk::spec::ecommerce::Ecommerce;
    ///
    /// /// The partner's value for the events it takes: (name, amount).
    /// fn conversion(track: &Track) -> Result<(&'static str, f64), Error> {
    ///     match track.ecommerce() {
    ///         Some(Ecommerce::OrderCompleted(order)) => Ok(("purchase", order.revenue.unwrap_or(0.0))),
    ///         Some(Ecommerce::ProductAdded(added)) => {
    ///             let p = &added.product;
    ///             Ok(("add_to_cart", p.price.unwrap_or(0.0) * p.quantity.unwrap_or(1.0)))
    ///         }
    ///         Some(other) => Err(Error::not_supported(format!("{} is not sent", other.name()))),
    ///         None => Err(Error::not_supported("not an Ecommerce event")),
    ///     }
    /// }
    ///
    /// let track: Track = serde_json::from_str(
    ///     r#"{"type": "track", "event": "Completed Order", "properties": {"revenue": 22.5}}"#,
    /// ).unwrap();
    /// assert_eq!(conversion(&track)?, ("purchase", 22.5));
    /// # Ok::<(), Error>(())
    /// ```
    Ecommerce {
        /// "Products Searched".
        ProductsSearched(ProductsSearched) = "Products Searched" | "Searched Products",
        /// "Product List Viewed" (v1 "Viewed Product Category").
        ProductListViewed(ProductListViewed) = "Product List Viewed" | "Viewed Product List"
            | "Viewed Product Category" | "Product Category Viewed",
        /// "Product List Filtered".
        ProductListFiltered(ProductListFiltered) = "Product List Filtered" | "Filtered Product List",
        /// "Promotion Viewed".
        PromotionViewed(PromotionViewed) = "Promotion Viewed" | "Viewed Promotion",
        /// "Promotion Clicked".
        PromotionClicked(PromotionClicked) = "Promotion Clicked" | "Clicked Promotion",
        /// "Product Clicked" (v1 "Clicked Product").
        ProductClicked(ProductClicked) = "Product Clicked" | "Clicked Product",
        /// "Product Viewed" (v1 "Viewed Product").
        ProductViewed(ProductViewed) = "Product Viewed" | "Viewed Product",
        /// "Product Added" (v1 "Added Product").
        ProductAdded(ProductAdded) = "Product Added" | "Added Product",
        /// "Product Removed" (v1 "Removed Product").
        ProductRemoved(ProductRemoved) = "Product Removed" | "Removed Product",
        /// "Cart Viewed".
        CartViewed(CartViewed) = "Cart Viewed" | "Viewed Cart",
        /// "Checkout Started" (also "Started Order").
        CheckoutStarted(CheckoutStarted) = "Checkout Started" | "Started Checkout" | "Started Order",
        /// "Checkout Step Viewed".
        CheckoutStepViewed(CheckoutStepViewed) = "Checkout Step Viewed" | "Viewed Checkout Step",
        /// "Checkout Step Completed".
        CheckoutStepCompleted(CheckoutStepCompleted) = "Checkout Step Completed"
            | "Completed Checkout Step",
        /// "Payment Info Entered".
        PaymentInfoEntered(PaymentInfoEntered) = "Payment Info Entered" | "Entered Payment Info",
        /// "Order Updated".
        OrderUpdated(OrderUpdated) = "Order Updated" | "Updated Order",
        /// "Order Completed" (v1 "Completed Order").
        OrderCompleted(OrderCompleted) = "Order Completed" | "Completed Order",
        /// "Order Refunded".
        OrderRefunded(OrderRefunded) = "Order Refunded" | "Refunded Order",
        /// "Order Cancelled".
        OrderCancelled(OrderCancelled) = "Order Cancelled" | "Cancelled Order",
        /// "Coupon Entered".
        CouponEntered(CouponEntered) = "Coupon Entered" | "Entered Coupon",
        /// "Coupon Applied".
        CouponApplied(CouponApplied) = "Coupon Applied" | "Applied Coupon",
        /// "Coupon Denied".
        CouponDenied(CouponDenied) = "Coupon Denied" | "Denied Coupon",
        /// "Coupon Removed".
        CouponRemoved(CouponRemoved) = "Coupon Removed" | "Removed Coupon",
        /// "Product Added to Wishlist".
        ProductAddedToWishlist(ProductAddedToWishlist) = "Product Added to Wishlist"
            | "Added to Wishlist Product",
        /// "Product Removed from Wishlist".
        ProductRemovedFromWishlist(ProductRemovedFromWishlist) = "Product Removed from Wishlist"
            | "Removed from Wishlist Product",
        /// "Wishlist Product Added to Cart" (analytics.js also takes "Product Added to Cart
        /// from Wishlist" and "Product Added from Wishlist to Cart").
        WishlistProductAddedToCart(WishlistProductAddedToCart) = "Wishlist Product Added to Cart"
            | "Product Added to Cart from Wishlist" | "Added to Cart from Wishlist Product"
            | "Product Added from Wishlist to Cart" | "Added from Wishlist to Cart Product",
        /// "Product Shared".
        ProductShared(ProductShared) = "Product Shared" | "Shared Product",
        /// "Cart Shared".
        CartShared(CartShared) = "Cart Shared" | "Shared Cart",
        /// "Product Reviewed".
        ProductReviewed(ProductReviewed) = "Product Reviewed" | "Reviewed Product",
    }
}

impl Ecommerce {
    /// The products the event is about: its `products` list, the one product of a
    /// single-product event (Product Viewed, Product Added, ...), or none (coupons,
    /// checkout steps, promotions, searches, reviews).
    pub fn products(&self) -> &[Product] {
        use std::slice::from_ref;
        match self {
            Ecommerce::ProductListViewed(e) => &e.products,
            Ecommerce::ProductListFiltered(e) => &e.products,
            Ecommerce::CartViewed(e) => &e.products,
            Ecommerce::CheckoutStarted(e) => &e.products,
            Ecommerce::OrderUpdated(e) => &e.products,
            Ecommerce::OrderCompleted(e) => &e.products,
            Ecommerce::OrderRefunded(e) => &e.products,
            Ecommerce::OrderCancelled(e) => &e.products,
            Ecommerce::CartShared(e) => &e.products,
            Ecommerce::ProductClicked(e) => from_ref(&e.product),
            Ecommerce::ProductViewed(e) => from_ref(&e.product),
            Ecommerce::ProductAdded(e) => from_ref(&e.product),
            Ecommerce::ProductRemoved(e) => from_ref(&e.product),
            Ecommerce::ProductAddedToWishlist(e) => from_ref(&e.product),
            Ecommerce::ProductRemovedFromWishlist(e) => from_ref(&e.product),
            Ecommerce::WishlistProductAddedToCart(e) => from_ref(&e.product),
            Ecommerce::ProductShared(e) => from_ref(&e.product),
            Ecommerce::ProductsSearched(_)
            | Ecommerce::PromotionViewed(_)
            | Ecommerce::PromotionClicked(_)
            | Ecommerce::CheckoutStepViewed(_)
            | Ecommerce::CheckoutStepCompleted(_)
            | Ecommerce::PaymentInfoEntered(_)
            | Ecommerce::CouponEntered(_)
            | Ecommerce::CouponApplied(_)
            | Ecommerce::CouponDenied(_)
            | Ecommerce::CouponRemoved(_)
            | Ecommerce::ProductReviewed(_) => &[],
        }
    }
}
