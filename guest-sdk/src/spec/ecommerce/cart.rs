//! Ecommerce v2 product and cart events: Product Clicked, Product Viewed, Product Added,
//! Product Removed, Cart Viewed.

use super::Product;
use crate::spec::read::view;

view! {
    /// "Product Clicked" (v1: "Clicked Product"): the user clicked a product. Its
    /// properties are the product's.
    ProductClicked {}
    + /// The product clicked: `product_id`, `sku`, `price`, ...
    product: Product
}

view! {
    /// "Product Viewed" (v1: "Viewed Product"): the user viewed a product's details.
    ProductViewed {
        /// `currency`: the currency of the transaction.
        currency: Option<String> = "currency",
        /// `value`: the total value of the product after quantity.
        value: Option<f64> = "value",
    }
    + /// The product viewed: `product_id`, `sku`, `price`, ...
    product: Product
}

view! {
    /// "Product Added" (v1: "Added Product"): the user added a product to their cart.
    ProductAdded {
        /// `cart_id`: the cart the product was added to.
        cart_id: Option<String> = "cart_id",
    }
    + /// The product added: `product_id`, `sku`, `price`, `quantity`, ...
    product: Product
}

view! {
    /// "Product Removed" (v1: "Removed Product"): the user removed a product from their
    /// cart.
    ProductRemoved {
        /// `cart_id`: the cart the product was removed from.
        cart_id: Option<String> = "cart_id",
    }
    + /// The product removed: `product_id`, `sku`, `price`, `quantity`, ...
    product: Product
}

view! {
    /// "Cart Viewed": the user viewed their cart.
    CartViewed {
        /// `cart_id`: the cart's id.
        cart_id: Option<String> = "cart_id",
        /// `products`: the products in the cart.
        products: Vec<Product> = "products",
    }
}
