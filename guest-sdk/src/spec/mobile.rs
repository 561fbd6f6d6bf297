//! Segment's [Native Mobile spec]: application lifecycle and campaign events as typed
//! views (see the [parent module](crate::spec) for how views read and what they keep).
//!
//! ```
//! use segfn_sdk::Track;
//! use segfn_sdk::spec::mobile::Mobile;
//!
//! let track: Track = serde_json::from_str(r#"{"type": "track", "event": "Application Updated",
//!     "properties": {"previous_version": "1.1.2", "previous_build": 1234, "version": "1.2.0"}}"#).unwrap();
//! let Some(Mobile::ApplicationUpdated(updated)) = track.spec::<Mobile>() else { panic!() };
//! assert_eq!(updated.version.as_deref(), Some("1.2.0"));
//! // The spec has builds as text; a number is kept, not converted.
//! assert_eq!(updated.previous_build, None);
//! assert_eq!(updated.extra["previous_build"], 1234);
//! ```
//!
//! [Native Mobile spec]: https://segment.com/docs/connections/spec/mobile/

use crate::spec::read::{events, view};

view! {
    /// The `campaign` of a campaign event: where an install or notification came from.
    Campaign {
        /// `source`: the ad network or push provider.
        source: Option<String> = "source",
        /// `name`: the campaign's name.
        name: Option<String> = "name",
        /// `medium`: the type of link used, e.g. `Push`.
        medium: Option<String> = "medium",
        /// `content`: the campaign's content, e.g. a push notification's text.
        content: Option<String> = "content",
        /// `ad_creative`: the ad creative's name (Install Attributed).
        ad_creative: Option<String> = "ad_creative",
        /// `ad_group`: the ad group's name (Install Attributed).
        ad_group: Option<String> = "ad_group",
    }
}

view! {
    /// "Application Installed": the user opened the app for the first time.
    ApplicationInstalled {
        /// `version`: the version installed.
        version: Option<String> = "version",
        /// `build`: the build number installed.
        build: Option<String> = "build",
    }
}

view! {
    /// "Application Opened": the user launched or foregrounded the app.
    ApplicationOpened {
        /// `from_background`: whether the app came from the background.
        from_background: Option<bool> = "from_background",
        /// `url`: the URL the app was opened with (iOS).
        url: Option<String> = "url",
        /// `referring_application`: the application that opened it.
        referring_application: Option<String> = "referring_application",
        /// `version`: the app's version.
        version: Option<String> = "version",
        /// `build`: the app's build number.
        build: Option<String> = "build",
    }
}

view! {
    /// "Application Backgrounded": the user backgrounded the app (no properties).
    ApplicationBackgrounded {}
}

view! {
    /// "Application Foregrounded": the user brought the app to the foreground (no
    /// properties).
    ApplicationForegrounded {}
}

view! {
    /// "Application Updated": the user updated the app.
    ApplicationUpdated {
        /// `previous_version`: the version before.
        previous_version: Option<String> = "previous_version",
        /// `previous_build`: the build before.
        previous_build: Option<String> = "previous_build",
        /// `version`: the new version.
        version: Option<String> = "version",
        /// `build`: the new build.
        build: Option<String> = "build",
    }
}

view! {
    /// "Application Uninstalled": the user uninstalled the app (no properties).
    ApplicationUninstalled {}
}

view! {
    /// "Application Crashed": the app crashed (no properties).
    ApplicationCrashed {}
}

view! {
    /// "Install Attributed": an install was attributed to a campaign.
    InstallAttributed {
        /// `provider`: the attribution provider.
        provider: Option<String> = "provider",
        /// `campaign`: the campaign attributed.
        campaign: Option<Campaign> = "campaign",
    }
}

view! {
    /// "Push Notification Received": a push notification arrived in the app.
    PushNotificationReceived {
        /// `campaign`: the notification's campaign.
        campaign: Option<Campaign> = "campaign",
    }
}

view! {
    /// "Push Notification Tapped" and "Push Notification Bounced": a notification was
    /// tapped, or bounced at the provider.
    PushNotification {
        /// `action`: the custom action tapped, for an actionable notification (`Open` by
        /// default, says the spec; the view adds no default).
        action: Option<String> = "action",
        /// `campaign`: the notification's campaign.
        campaign: Option<Campaign> = "campaign",
    }
}

view! {
    /// "Deep Link Opened" and "Deep Link Clicked": the app was opened through a link, or a
    /// link to it clicked.
    DeepLink {
        /// `provider`: the deep link provider.
        provider: Option<String> = "provider",
        /// `url`: the link.
        url: Option<String> = "url",
    }
}

events! {
    /// A Native Mobile spec event, by name, as its typed view: `track.spec::<Mobile>()`.
    /// Names also match in the action-first form Segment's integrations accept
    /// ("Opened Application").
    Mobile {
        /// "Application Installed".
        ApplicationInstalled(ApplicationInstalled) = "Application Installed"
            | "Installed Application",
        /// "Application Opened".
        ApplicationOpened(ApplicationOpened) = "Application Opened" | "Opened Application",
        /// "Application Backgrounded".
        ApplicationBackgrounded(ApplicationBackgrounded) = "Application Backgrounded"
            | "Backgrounded Application",
        /// "Application Foregrounded".
        ApplicationForegrounded(ApplicationForegrounded) = "Application Foregrounded",
        /// "Application Updated".
        ApplicationUpdated(ApplicationUpdated) = "Application Updated" | "Updated Application",
        /// "Application Uninstalled".
        ApplicationUninstalled(ApplicationUninstalled) = "Application Uninstalled"
            | "Uninstalled Application",
        /// "Application Crashed".
        ApplicationCrashed(ApplicationCrashed) = "Application Crashed",
        /// "Install Attributed".
        InstallAttributed(InstallAttributed) = "Install Attributed" | "Attributed Install",
        /// "Push Notification Received".
        PushNotificationReceived(PushNotificationReceived) = "Push Notification Received"
            | "Received Push Notification",
        /// "Push Notification Tapped".
        PushNotificationTapped(PushNotification) = "Push Notification Tapped"
            | "Tapped Push Notification",
        /// "Push Notification Bounced".
        PushNotificationBounced(PushNotification) = "Push Notification Bounced"
            | "Bounced Push Notification",
        /// "Deep Link Opened".
        DeepLinkOpened(DeepLink) = "Deep Link Opened" | "Opened Deep Link",
        /// "Deep Link Clicked".
        DeepLinkClicked(DeepLink) = "Deep Link Clicked",
    }
}
