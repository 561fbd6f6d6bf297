//! Ecommerce v2 wishlist events: Product Added to Wishlist, Product Removed from
//! Wishlist, Wishlist Product Added to Cart.

use super::Product;
use crate::spec::read::view;

view! {
    /// "Product Added to Wishlist": the user added a product to a wishlist.
    ProductAddedToWishlist {
        /// `wishlist_id`: the wishlist's id.
        wishlist_id: Option<String> = "wishlist_id",
        /// `wishlist_name`: the wishlist's name.
        wishlist_name: Option<String> = "wishlist_name",
    }
    + /// The product added: `product_id`, `sku`, `price`, ...
    product: Product
}

view! {
    /// "Product Removed from Wishlist": the user removed a product from a wishlist.
    ProductRemovedFromWishlist {
        /// `wishlist_id`: the wishlist's id.
        wishlist_id: Option<String> = "wishlist_id",
        /// `wishlist_name`: the wishlist's name.
        wishlist_name: Option<String> = "wishlist_name",
    }
    + /// The product removed: `product_id`, `sku`, `price`, ...
    product: Product
}

view! {
    /// "Wishlist Product Added to Cart": the user moved a product from a wishlist to the
    /// cart.
    WishlistProductAddedToCart {
        /// `wishlist_id`: the wishlist's id.
        wishlist_id: Option<String> = "wishlist_id",
        /// `wishlist_name`: the wishlist's name.
        wishlist_name: Option<String> = "wishlist_name",
        /// `cart_id`: the cart the product was added to.
        cart_id: Option<String> = "cart_id",
    }
    + /// The product moved: `product_id`, `sku`, `price`, ...
    product: Product
}
