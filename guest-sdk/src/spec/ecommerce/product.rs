//! The parts Ecommerce events share: a product (an element of `products`, or the
//! properties of a single-product event), the filters and sorts of a product list, and a
//! search query.

use crate::event::Object;
use crate::spec::read::{Fit, view};
use serde_json::Value;

view! {
    /// A product as the Ecommerce spec describes it: an element of an event's `products`,
    /// or, flattened, the properties of a single-product event such as "Product Added"
    /// (there its other properties go to the event's `extra`, and this `extra` stays
    /// empty).
    ///
    /// ```
    /// use segfn_sdk::spec::ecommerce::Product;
    ///
    /// let properties = serde_json::json!({"product_id": "507f1f77", "sku": "G-32", "price": 18.99,
    ///                                     "quantity": 1, "color": "red"});
    /// let product = Product::from_properties(properties.as_object().unwrap());
    /// assert_eq!(product.sku.as_deref(), Some("G-32"));
    /// assert_eq!(product.quantity, Some(1.0));
    /// assert_eq!(product.extra["color"], "red");
    /// ```
    Product {
        /// `product_id`: the product's database id.
        product_id: Option<String> = "product_id",
        /// `sku`: the product's SKU (may equal `product_id`).
        sku: Option<String> = "sku",
        /// `category`: the product's category.
        category: Option<String> = "category",
        /// `name`: the product's name.
        name: Option<String> = "name",
        /// `brand`: the product's brand.
        brand: Option<String> = "brand",
        /// `variant`: the product's variant.
        variant: Option<String> = "variant",
        /// `price`: the product's price.
        price: Option<f64> = "price",
        /// `quantity`: the quantity of the product.
        quantity: Option<f64> = "quantity",
        /// `coupon`: a coupon code for the product, e.g. `MAY_DEALS_3`.
        coupon: Option<String> = "coupon",
        /// `position`: the product's position in a list, e.g. 3.
        position: Option<f64> = "position",
        /// `url`: the product page's URL.
        url: Option<String> = "url",
        /// `image_url`: the product image's URL.
        image_url: Option<String> = "image_url",
    }
}

view! {
    /// One of the filters of "Product List Filtered" (`filters[]`).
    Filter {
        /// `type`: the id of the filter type, e.g. `department`.
        kind: Option<String> = "type",
        /// `value`: the id of the selection, e.g. `beauty`.
        value: Option<String> = "value",
    }
}

view! {
    /// One of the sorts of "Product List Filtered" (`sorts[]`).
    Sort {
        /// `type`: the id of the sort type, e.g. `price`.
        kind: Option<String> = "type",
        /// `value`: the id of the selection, e.g. `desc`.
        value: Option<String> = "value",
    }
}

/// The `query` of "Products Searched", which the spec allows as text or an object.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchQuery {
    /// A query as text, e.g. `blue roses`.
    Text(String),
    /// A structured query, as received.
    Object(Object),
}

impl SearchQuery {
    /// The query when it is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            SearchQuery::Text(text) => Some(text),
            SearchQuery::Object(_) => None,
        }
    }
}

impl Fit for SearchQuery {
    const EXPECTED: &'static str = "text or an object";
    const EXPECTED_LIST: &'static str = "a list of text or objects";
    fn fit(value: &Value) -> Option<SearchQuery> {
        match value {
            Value::String(text) => Some(SearchQuery::Text(text.clone())),
            Value::Object(map) => Some(SearchQuery::Object(map.clone())),
            _ => None,
        }
    }
}
