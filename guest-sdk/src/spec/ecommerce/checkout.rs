//! Ecommerce v2 checkout events: Checkout Started, Checkout Step Viewed, Checkout Step
//! Completed, Payment Info Entered.

use super::Product;
use crate::spec::read::view;

view! {
    /// "Checkout Started": the user started the order process. The spec asks for every
    /// item in the cart in `products`.
    CheckoutStarted {
        /// `order_id`: the order (transaction) id.
        order_id: Option<String> = "order_id",
        /// `affiliation`: the store the transaction occurred in, e.g. `Google Store`.
        affiliation: Option<String> = "affiliation",
        /// `value`: revenue with discounts and coupons added in (how is left to the sender).
        value: Option<f64> = "value",
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
    /// "Checkout Step Viewed": the user viewed a checkout step.
    CheckoutStepViewed {
        /// `checkout_id`: the checkout transaction's id.
        checkout_id: Option<String> = "checkout_id",
        /// `step`: the step's number in the checkout process.
        step: Option<f64> = "step",
        /// `shipping_method`: the shipping method chosen.
        shipping_method: Option<String> = "shipping_method",
        /// `payment_method`: the payment method chosen.
        payment_method: Option<String> = "payment_method",
    }
}

view! {
    /// "Checkout Step Completed": the user completed a checkout step.
    CheckoutStepCompleted {
        /// `checkout_id`: the checkout transaction's id.
        checkout_id: Option<String> = "checkout_id",
        /// `step`: the step's number in the checkout process.
        step: Option<f64> = "step",
        /// `shipping_method`: the shipping method chosen.
        shipping_method: Option<String> = "shipping_method",
        /// `payment_method`: the payment method chosen.
        payment_method: Option<String> = "payment_method",
    }
}

view! {
    /// "Payment Info Entered": the user entered payment information.
    PaymentInfoEntered {
        /// `checkout_id`: the checkout transaction's id.
        checkout_id: Option<String> = "checkout_id",
        /// `order_id`: the order's id (optional in the spec).
        order_id: Option<String> = "order_id",
        /// `step`: the step's number in the checkout process.
        step: Option<f64> = "step",
        /// `shipping_method`: the shipping method chosen.
        shipping_method: Option<String> = "shipping_method",
        /// `payment_method`: the payment method chosen.
        payment_method: Option<String> = "payment_method",
    }
}
