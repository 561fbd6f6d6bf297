//! Segment's [Email spec], for email tools that send their events to Segment: typed views
//! (see the [parent module](crate::spec) for how views read and what they keep).
//!
//! The recipient's address is in the track's context (`context.traits.email`), and for
//! opens and clicks the reader's `context.ip` and `context.userAgent`: the track's own
//! accessors give them, so the views do not repeat them.
//!
//! ```
//! use segfn_sdk::Track;
//! use segfn_sdk::spec::email::Email;
//!
//! let track: Track = serde_json::from_str(r#"{"type": "track", "event": "Email Link Clicked",
//!     "properties": {"email_id": "e1", "campaign_name": "May", "link_url": "https://example.com"},
//!     "context": {"traits": {"email": "peter@example.com"}}}"#).unwrap();
//! let Some(Email::EmailLinkClicked(click)) = track.spec::<Email>() else { panic!() };
//! assert_eq!(click.message.email_id.as_deref(), Some("e1"));
//! assert_eq!(click.link_url.as_deref(), Some("https://example.com"));
//! assert_eq!(track.context().traits()["email"], "peter@example.com");
//! ```
//!
//! [Email spec]: https://segment.com/docs/connections/spec/email/

use crate::spec::read::{events, view};

view! {
    /// The properties every Email event has: which email, of which campaign. The view of
    /// "Email Bounced", "Email Delivered", "Email Marked as Spam" and "Email Opened".
    EmailMessage {
        /// `email_id`: the email's id.
        email_id: Option<String> = "email_id",
        /// `email_subject`: the email's subject line.
        email_subject: Option<String> = "email_subject",
        /// `campaign_id`: the campaign's id.
        campaign_id: Option<String> = "campaign_id",
        /// `campaign_name`: the campaign's name.
        campaign_name: Option<String> = "campaign_name",
    }
}

view! {
    /// "Email Link Clicked": the recipient clicked a link in the email.
    EmailLinkClicked {
        /// `link_id`: the link's id.
        link_id: Option<String> = "link_id",
        /// `link_url`: the URL the link points to.
        link_url: Option<String> = "link_url",
    }
    + /// The email: `email_id`, `email_subject`, `campaign_id`, `campaign_name`.
    message: EmailMessage
}

view! {
    /// "Unsubscribed": the recipient unsubscribed, from a list or from everything.
    Unsubscribed {
        /// `list_id`: the list's id, if the unsubscription is from one list.
        list_id: Option<String> = "list_id",
        /// `list_name`: the list's name.
        list_name: Option<String> = "list_name",
    }
    + /// The email: `email_id`, `email_subject`, `campaign_id`, `campaign_name`.
    message: EmailMessage
}

events! {
    /// An Email spec event, by name, as its typed view: `track.spec::<Email>()`.
    Email {
        /// "Email Bounced".
        EmailBounced(EmailMessage) = "Email Bounced",
        /// "Email Delivered".
        EmailDelivered(EmailMessage) = "Email Delivered",
        /// "Email Link Clicked".
        EmailLinkClicked(EmailLinkClicked) = "Email Link Clicked",
        /// "Email Marked as Spam".
        EmailMarkedAsSpam(EmailMessage) = "Email Marked as Spam",
        /// "Email Opened".
        EmailOpened(EmailMessage) = "Email Opened",
        /// "Unsubscribed".
        Unsubscribed(Unsubscribed) = "Unsubscribed",
    }
}
