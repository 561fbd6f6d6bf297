//! Segment's semantic events as typed views: the [Ecommerce v2](ecommerce) family in
//! full, and the [Mobile](mobile), [B2B SaaS](b2b_saas), [Video](video) and
//! [Email](email) specs.
//!
//! A view is one struct per event with a public field for each property the spec names,
//! typed as the spec says (text as `String`, numbers as `f64`, lists as `Vec`), read from
//! a [`Track`]'s properties:
//!
//! ```
//! use segfn_sdk::Track;
//! use segfn_sdk::spec::ecommerce::Ecommerce;
//!
//! let track: Track = serde_json::from_str(r#"{
//!     "type": "track",
//!     "event": "Order Completed",
//!     "properties": {
//!         "order_id": "50314b8e9bcf000000000000",
//!         "revenue": 22.5,
//!         "currency": "USD",
//!         "gift_wrap": true,
//!         "products": [{"sku": "45790-32", "price": 19, "quantity": 1}]
//!     }
//! }"#).unwrap();
//!
//! let Some(Ecommerce::OrderCompleted(order)) = track.ecommerce() else {
//!     panic!("not an order");
//! };
//! assert_eq!(order.order_id.as_deref(), Some("50314b8e9bcf000000000000"));
//! assert_eq!(order.revenue, Some(22.5));
//! assert_eq!(order.products[0].price, Some(19.0));
//! // What the spec does not name is kept, as received.
//! assert_eq!(order.extra["gift_wrap"], true);
//! ```
//!
//! # Specs
//!
//! | Module | Events | Coverage |
//! |---|---|---|
//! | [`ecommerce`] | 28 | complete: every event and property of Ecommerce v2, v1 names |
//! | [`mobile`] | 13 | complete: lifecycle and campaign events |
//! | [`b2b_saas`] | 10 | complete (`context.groupId` is the track's own) |
//! | [`video`] | 17 | the spec's property tables, plus the plural ids its examples send |
//! | [`email`] | 6 | complete (the recipient is in the track's context) |
//!
//! # Reading
//!
//! - `track.ecommerce()`, or `track.spec::<S>()` for any spec ([`Spec`]): the event's
//!   view chosen by its name, `None` for events of other specs. `Ecommerce::from_event`
//!   and friends do the same from a name and properties.
//! - `OrderCompleted::from_properties(track.properties())`, or
//!   `track.properties_as::<OrderCompleted>()`: one view, whatever the event's name.
//!
//! # Tolerance: nothing fails, nothing is lost
//!
//! Real events do not always follow the spec (a numeric `product_id`, a `"22.50"`
//! revenue, a `null` in `products`), and a view never rejects an event for it: a value
//! that does not have the spec's type leaves its field empty and is kept, as received, in
//! the view's `extra`, beside the properties the spec does not name. Values are not
//! coerced (`"22.50"` is not read as a number): the view says what the spec says, and
//! [`misfits`](ecommerce::OrderCompleted::misfits) lists what did not fit, so a function
//! can reject it, accept it, or convert it itself. A list keeps the elements that fit;
//! when one does not, the whole list is also kept in `extra`. `null` reads as absent.
//!
//! A view is a read-only copy: reading one leaves the event as it was, so
//! `track.properties()` still has every property exactly as received, and an event
//! passed through comes back unchanged. Numbers are read as the nearest `f64`. Views do
//! not serialize: an insert function that changes what it forwards edits the track.
//!
//! The views add no meaning the specs do not state: no default quantity or currency,
//! and no choice between `revenue`, `total` and `value`. Those are each function's
//! business.
//!
//! # Event names
//!
//! Each event is chosen by its spec name or an alias: the Ecommerce v1 names Segment
//! still maps ("Completed Order" for "Order Completed", "Viewed Product Category" for
//! "Product List Viewed"), and the action-first forms Segment's own integrations accept
//! ("Viewed Cart"). Names compare as those integrations compare them: ASCII case, spaces
//! and underscores do not matter (`order_completed` is "Order Completed").
//! `Ecommerce::NAMES` lists them all.

use crate::event::{Object, Track};

pub mod b2b_saas;
pub mod ecommerce;
pub mod email;
pub mod mobile;
mod read;
pub mod video;

pub use read::Misfit;

/// A family of semantic events: an enum with one variant, holding its view, per event.
/// Implement it for a tracking plan of your own to read it with `track.spec()` too.
pub trait Spec: Sized {
    /// The view of an event of this spec with these properties, chosen by the event's
    /// name; `None` when the name is none of the spec's.
    fn from_event(event: &str, properties: &Object) -> Option<Self>;
}

impl Track {
    /// The event as a typed view of spec `S`, e.g. `track.spec::<Mobile>()`: `None` when
    /// the event has no name or is not one of `S`'s (see the [module](crate::spec)).
    pub fn spec<S: Spec>(&self) -> Option<S> {
        S::from_event(self.event()?, self.properties())
    }

    /// The event as an Ecommerce v2 view: `track.spec::<`[`Ecommerce`]`>()`.
    ///
    /// ```
    /// use segfn_sdk::Track;
    /// use segfn_sdk::spec::ecommerce::Ecommerce;
    ///
    /// let track: Track = serde_json::from_str(r#"{"type": "track", "event": "Viewed Product",
    ///     "properties": {"product_id": "507f1f77", "price": 18.99, "currency": "usd"}}"#).unwrap();
    /// match track.ecommerce() {
    ///     Some(Ecommerce::ProductViewed(viewed)) => {
    ///         assert_eq!(viewed.product.product_id.as_deref(), Some("507f1f77"));
    ///         assert_eq!(viewed.product.price, Some(18.99));
    ///         assert_eq!(viewed.currency.as_deref(), Some("usd"));
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    ///
    /// [`Ecommerce`]: ecommerce::Ecommerce
    pub fn ecommerce(&self) -> Option<ecommerce::Ecommerce> {
        self.spec()
    }
}
