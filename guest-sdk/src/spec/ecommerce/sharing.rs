//! Ecommerce v2 sharing and reviewing events: Product Shared, Cart Shared, Product
//! Reviewed.

use super::Product;
use crate::spec::read::view;

view! {
    /// "Product Shared": the user shared a product. (The spec lists a product's
    /// properties but `quantity`, `coupon` and `position`; those are read when present.)
    ProductShared {
        /// `share_via`: how it was shared, e.g. `email`.
        share_via: Option<String> = "share_via",
        /// `share_message`: the message the sender sent.
        share_message: Option<String> = "share_message",
        /// `recipient`: who it was shared with.
        recipient: Option<String> = "recipient",
    }
    + /// The product shared: `product_id`, `sku`, `price`, ...
    product: Product
}

view! {
    /// "Cart Shared": the user shared their cart.
    CartShared {
        /// `share_via`: how it was shared, e.g. `email`.
        share_via: Option<String> = "share_via",
        /// `share_message`: the message the sender sent.
        share_message: Option<String> = "share_message",
        /// `recipient`: who it was shared with.
        recipient: Option<String> = "recipient",
        /// `cart_id`: the cart's id.
        cart_id: Option<String> = "cart_id",
        /// `products`: the products in the cart (the spec names only their `product_id`).
        products: Vec<Product> = "products",
    }
}

view! {
    /// "Product Reviewed": the user reviewed a product.
    ProductReviewed {
        /// `product_id`: the product's id.
        product_id: Option<String> = "product_id",
        /// `review_id`: the review's id.
        review_id: Option<String> = "review_id",
        /// `review_body`: the review's text.
        review_body: Option<String> = "review_body",
        /// `rating`: the rating, as text in the spec (`"5"`; a number is a misfit).
        rating: Option<String> = "rating",
    }
}
