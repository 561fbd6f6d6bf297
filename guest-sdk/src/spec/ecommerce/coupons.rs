//! Ecommerce v2 coupon events: Coupon Entered, Coupon Applied, Coupon Denied, Coupon
//! Removed.

use crate::spec::read::view;

view! {
    /// "Coupon Entered": the user entered a coupon on a cart or order.
    CouponEntered {
        /// `order_id`: the order's id, if any.
        order_id: Option<String> = "order_id",
        /// `cart_id`: the cart's id, if any.
        cart_id: Option<String> = "cart_id",
        /// `coupon_id`: the coupon's id.
        coupon_id: Option<String> = "coupon_id",
    }
}

view! {
    /// "Coupon Applied": a coupon was applied to a cart or order.
    CouponApplied {
        /// `order_id`: the order's id, if any.
        order_id: Option<String> = "order_id",
        /// `cart_id`: the cart's id, if any.
        cart_id: Option<String> = "cart_id",
        /// `coupon_id`: the coupon's id.
        coupon_id: Option<String> = "coupon_id",
        /// `coupon_name`: the coupon's name.
        coupon_name: Option<String> = "coupon_name",
        /// `discount`: the monetary discount the coupon applied.
        discount: Option<f64> = "discount",
    }
}

view! {
    /// "Coupon Denied": a coupon was denied on a cart or order.
    CouponDenied {
        /// `order_id`: the order's id, if any.
        order_id: Option<String> = "order_id",
        /// `cart_id`: the cart's id, if any.
        cart_id: Option<String> = "cart_id",
        /// `coupon_id`: the coupon's id.
        coupon_id: Option<String> = "coupon_id",
        /// `coupon_name`: the coupon's name.
        coupon_name: Option<String> = "coupon_name",
        /// `reason`: why the coupon was denied.
        reason: Option<String> = "reason",
    }
}

view! {
    /// "Coupon Removed": the user removed a coupon from a cart or order.
    CouponRemoved {
        /// `order_id`: the order's id, if any.
        order_id: Option<String> = "order_id",
        /// `cart_id`: the cart's id, if any.
        cart_id: Option<String> = "cart_id",
        /// `coupon_id`: the coupon's id.
        coupon_id: Option<String> = "coupon_id",
        /// `coupon_name`: the coupon's name.
        coupon_name: Option<String> = "coupon_name",
        /// `discount`: the monetary discount the coupon had applied.
        discount: Option<f64> = "discount",
    }
}
