//! Ecommerce v2 order events: Order Updated, Order Completed, Order Refunded, Order
//! Cancelled.

use super::Product;
use crate::spec::read::view;

view! {
    /// "Order Updated": the user updated the order. The spec asks for every item in the
    /// cart in `products`.
    OrderUpdated {
        /// `order_id`: the order (transaction) id.
        order_id: Option<String> = "order_id",
        /// `affiliation`: the store the transaction occurred in, e.g. `Google Store`.
        affiliation: Option<String> = "affiliation",
        /// `total`: revenue with discounts and coupons added in (how is left to the sender).
        total: Option<f64> = "total",
        /// `revenue`: revenue of the transaction, without shipping and tax.
        revenue: Option<f64> = "revenue",
        /// `shipping`: the shipping cost.
        shipping: Option<f64> = "shipping",
        /// `tax`: the total tax.
        tax: Option<f64> = "tax",
        /// `discount`: the total discount.
        discount: Option<f64> = "discount",
        /// `coupon`: the coupon redeemed with the transaction.
        coupon: Option<String> = "coupon",
        /// `currency`: the transaction's currency code, e.g. `USD`.
        currency: Option<String> = "currency",
        /// `products`: the products in the order.
        products: Vec<Product> = "products",
    }
}

view! {
    /// "Order Completed" (v1: "Completed Order"): the user completed the order. The spec
    /// asks for every item in the cart in `products`.
    ///
    /// ```
    /// use segfn_sdk::Track;
    /// use segfn_sdk::spec::ecommerce::OrderCompleted;
    ///
    /// let track: Track = serde_json::from_str(r#"{"type": "track", "event": "Order Completed",
    ///     "properties": {"order_id": "50314b8e", "total": 27.5, "revenue": "22.50",
    ///                    "products": [{"sku": "45790-32", "quantity": 1}, null]}}"#).unwrap();
    /// // Whatever the event's name; `OrderCompleted::from_properties` is the same.
    /// let order: OrderCompleted = track.properties_as()?;
    /// assert_eq!(order.total, Some(27.5));
    /// assert_eq!(order.products.len(), 1);
    /// // A revenue in text does not fit the spec's number: the field is empty, the value
    /// // kept, and the function decides.
    /// assert_eq!(order.revenue, None);
    /// let misfits: Vec<String> = order.misfits().map(|m| m.property.to_owned()).collect();
    /// assert_eq!(misfits, ["revenue", "products"]);
    /// assert_eq!(order.extra["revenue"], "22.50");
    /// # Ok::<(), segfn_sdk::Error>(())
    /// ```
    OrderCompleted {
        /// `checkout_id`: the checkout's id.
        checkout_id: Option<String> = "checkout_id",
        /// `order_id`: the order (transaction) id.
        order_id: Option<String> = "order_id",
        /// `affiliation`: the store the transaction occurred in, e.g. `Google Store`.
        affiliation: Option<String> = "affiliation",
        /// `subtotal`: the order total after discounts, before tax and shipping.
        subtotal: Option<f64> = "subtotal",
        /// `total`: the subtotal with shipping and tax added in.
        total: Option<f64> = "total",
        /// `revenue`: revenue of the transaction, with discounts, without shipping and tax.
        revenue: Option<f64> = "revenue",
        /// `shipping`: the shipping cost.
        shipping: Option<f64> = "shipping",
        /// `tax`: the total tax.
        tax: Option<f64> = "tax",
        /// `discount`: the total discount.
        discount: Option<f64> = "discount",
        /// `coupon`: the coupon redeemed with the transaction.
        coupon: Option<String> = "coupon",
        /// `currency`: the transaction's currency code, e.g. `USD`.
        currency: Option<String> = "currency",
        /// `products`: the products in the order.
        products: Vec<Product> = "products",
    }
}

view! {
    /// "Order Refunded": the order was refunded. The spec's table names only `order_id`,
    /// and asks for the same properties as the order's "Order Completed" (its example has
    /// `total`, `currency` and `products`), so this view reads those too.
    OrderRefunded {
        /// `checkout_id`: the checkout's id.
        checkout_id: Option<String> = "checkout_id",
        /// `order_id`: the order (transaction) id.
        order_id: Option<String> = "order_id",
        /// `affiliation`: the store the transaction occurred in, e.g. `Google Store`.
        affiliation: Option<String> = "affiliation",
        /// `subtotal`: the order total after discounts, before tax and shipping.
        subtotal: Option<f64> = "subtotal",
        /// `total`: the subtotal with shipping and tax added in.
        total: Option<f64> = "total",
        /// `revenue`: revenue of the transaction, with discounts, without shipping and tax.
        revenue: Option<f64> = "revenue",
        /// `shipping`: the shipping cost.
        shipping: Option<f64> = "shipping",
        /// `tax`: the total tax.
        tax: Option<f64> = "tax",
        /// `discount`: the total discount.
        discount: Option<f64> = "discount",
        /// `coupon`: the coupon redeemed with the transaction.
        coupon: Option<String> = "coupon",
        /// `currency`: the transaction's currency code, e.g. `USD`.
        currency: Option<String> = "currency",
        /// `products`: the products refunded.
        products: Vec<Product> = "products",
    }
}

view! {
    /// "Order Cancelled": the user cancelled the order. The spec asks for every item in
    /// the cart in `products`.
    OrderCancelled {
        /// `order_id`: the order (transaction) id.
        order_id: Option<String> = "order_id",
        /// `affiliation`: the store the transaction occurred in, e.g. `Google Store`.
        affiliation: Option<String> = "affiliation",
        /// `total`: revenue with discounts and coupons added in.
        total: Option<f64> = "total",
        /// `revenue`: revenue of the transaction, without shipping and tax.
        revenue: Option<f64> = "revenue",
        /// `shipping`: the shipping cost.
        shipping: Option<f64> = "shipping",
        /// `tax`: the total tax.
        tax: Option<f64> = "tax",
        /// `discount`: the total discount.
        discount: Option<f64> = "discount",
        /// `coupon`: the coupon redeemed with the transaction.
        coupon: Option<String> = "coupon",
        /// `currency`: the transaction's currency code, e.g. `USD`.
        currency: Option<String> = "currency",
        /// `products`: the products in the order.
        products: Vec<Product> = "products",
    }
}
