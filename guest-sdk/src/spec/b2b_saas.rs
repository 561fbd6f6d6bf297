//! Segment's [B2B SaaS spec]: account and user lifecycle events as typed views (see the
//! [parent module](crate::spec) for how views read and what they keep).
//!
//! Every event of this spec also names `context.groupId`, the account's id: that is the
//! track's `track.context().group_id()`, not a property, so the views do not repeat it.
//!
//! ```
//! use segfn_sdk::Track;
//! use segfn_sdk::spec::b2b_saas::B2bSaas;
//!
//! let track: Track = serde_json::from_str(r#"{"type": "track", "event": "Trial Started",
//!     "properties": {"trial_plan_name": "Business", "trial_end_date": "2018-09-20T04:09:47Z"},
//!     "context": {"groupId": "acct_123"}}"#).unwrap();
//! let Some(B2bSaas::TrialStarted(trial)) = track.spec::<B2bSaas>() else { panic!() };
//! assert_eq!(trial.trial_plan_name.as_deref(), Some("Business"));
//! assert_eq!(track.context().group_id(), Some("acct_123"));
//! ```
//!
//! [B2B SaaS spec]: https://segment.com/docs/connections/spec/b2b-saas/

use crate::spec::read::{events, view};

view! {
    /// "Account Created" and "Account Deleted".
    Account {
        /// `account_name`: the account's name.
        account_name: Option<String> = "account_name",
    }
}

view! {
    /// "Signed Up": a user signed up.
    SignedUp {
        /// `type`: the kind of signup, e.g. `invited` or `organic`.
        kind: Option<String> = "type",
        /// `first_name`: the user's first name.
        first_name: Option<String> = "first_name",
        /// `last_name`: the user's last name.
        last_name: Option<String> = "last_name",
        /// `email`: the user's email address.
        email: Option<String> = "email",
        /// `phone`: the user's phone number.
        phone: Option<String> = "phone",
        /// `username`: the user's username.
        username: Option<String> = "username",
        /// `title`: the user's title.
        title: Option<String> = "title",
    }
}

view! {
    /// "Signed In" and "Signed Out".
    Session {
        /// `username`: the user's username.
        username: Option<String> = "username",
    }
}

view! {
    /// "Invite Sent": a user invited another.
    InviteSent {
        /// `invitee_email`: the invitee's email address.
        invitee_email: Option<String> = "invitee_email",
        /// `invitee_first_name`: the invitee's first name.
        invitee_first_name: Option<String> = "invitee_first_name",
        /// `invitee_last_name`: the invitee's last name.
        invitee_last_name: Option<String> = "invitee_last_name",
        /// `invitee_role`: the invitee's permission group.
        invitee_role: Option<String> = "invitee_role",
    }
}

view! {
    /// "Account Added User": a user was added to an account.
    AccountAddedUser {
        /// `role`: the user's permission group in the account.
        role: Option<String> = "role",
    }
}

view! {
    /// "Account Removed User": a user was removed from an account (no properties).
    AccountRemovedUser {}
}

view! {
    /// "Trial Started" and "Trial Ended".
    Trial {
        /// `trial_start_date`: when the trial starts (ISO-8601 text, as received).
        trial_start_date: Option<String> = "trial_start_date",
        /// `trial_end_date`: when the trial ends (ISO-8601 text, as received).
        trial_end_date: Option<String> = "trial_end_date",
        /// `trial_plan_name`: the plan being trialed.
        trial_plan_name: Option<String> = "trial_plan_name",
    }
}

events! {
    /// A B2B SaaS spec event, by name, as its typed view: `track.spec::<B2bSaas>()`.
    /// "User Signed Up", "User Signed In" and "User Signed Out", the object-action names
    /// the spec allows, match too.
    B2bSaas {
        /// "Account Created".
        AccountCreated(Account) = "Account Created",
        /// "Account Deleted".
        AccountDeleted(Account) = "Account Deleted",
        /// "Signed Up".
        SignedUp(SignedUp) = "Signed Up" | "User Signed Up",
        /// "Signed In".
        SignedIn(Session) = "Signed In" | "User Signed In",
        /// "Signed Out".
        SignedOut(Session) = "Signed Out" | "User Signed Out",
        /// "Invite Sent".
        InviteSent(InviteSent) = "Invite Sent",
        /// "Account Added User".
        AccountAddedUser(AccountAddedUser) = "Account Added User",
        /// "Account Removed User".
        AccountRemovedUser(AccountRemovedUser) = "Account Removed User",
        /// "Trial Started".
        TrialStarted(Trial) = "Trial Started",
        /// "Trial Ended".
        TrialEnded(Trial) = "Trial Ended",
    }
}
