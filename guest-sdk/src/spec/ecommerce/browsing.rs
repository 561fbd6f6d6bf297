//! Ecommerce v2 browsing and promotion events: Products Searched, Product List Viewed,
//! Product List Filtered, Promotion Viewed, Promotion Clicked.

use super::{Filter, Product, SearchQuery, Sort};
use crate::spec::read::view;

view! {
    /// "Products Searched": the user searched for products.
    ProductsSearched {
        /// `query`: what the user searched for, as text or an object.
        query: Option<SearchQuery> = "query",
    }
}

view! {
    /// "Product List Viewed" (v1: "Viewed Product Category"): the user viewed a product
    /// list or category.
    ProductListViewed {
        /// `list_id`: the product list viewed.
        list_id: Option<String> = "list_id",
        /// `category`: the product category viewed.
        category: Option<String> = "category",
        /// `products`: the products in the list.
        products: Vec<Product> = "products",
    }
}

view! {
    /// "Product List Filtered": the user filtered a product list or category.
    ProductListFiltered {
        /// `list_id`: the product list viewed.
        list_id: Option<String> = "list_id",
        /// `category`: the product category viewed.
        category: Option<String> = "category",
        /// `filters`: the filters in use.
        filters: Vec<Filter> = "filters",
        /// `sorts`: the sorting in use.
        sorts: Vec<Sort> = "sorts",
        /// `products`: the products in the list.
        products: Vec<Product> = "products",
    }
}

view! {
    /// "Promotion Viewed": the user viewed an internal promotion.
    PromotionViewed {
        /// `promotion_id`: the promotion's id.
        promotion_id: Option<String> = "promotion_id",
        /// `creative`: the promotion's creative, e.g. `top_banner_2`.
        creative: Option<String> = "creative",
        /// `name`: the promotion's name.
        name: Option<String> = "name",
        /// `position`: where the promotion was, e.g. `home_banner_top` (text in the spec).
        position: Option<String> = "position",
    }
}

view! {
    /// "Promotion Clicked": the user clicked an internal promotion.
    PromotionClicked {
        /// `promotion_id`: the promotion's id.
        promotion_id: Option<String> = "promotion_id",
        /// `creative`: the promotion's creative, e.g. `top_banner_2`.
        creative: Option<String> = "creative",
        /// `name`: the promotion's name.
        name: Option<String> = "name",
        /// `position`: where the promotion was, e.g. `home_banner_top` (text in the spec).
        position: Option<String> = "position",
    }
}
