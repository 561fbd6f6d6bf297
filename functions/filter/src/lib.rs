//! Example insert function: drops the events a customer does not want delivered and
//! passes every other event on unchanged, exactly as it arrived (numbers, key order and
//! all), for the destination after it.
//!
//! What a partner copies to start an insert function: settings that say what to drop,
//! `DropEvent` for what goes no further, and `Ok(Some(event))` to forward the rest.

use segfn_sdk::{
    Alias, Error, Event, Function, Group, HandlerResult, Identify, Page, Screen, Track,
};
use serde::Deserialize;

/// The function's settings, as configured per customer in Segment.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Track events with these names are dropped.
    #[serde(default)]
    pub drop_events: Vec<String>,
    /// Messages of these types (`page`, `screen`, ...) are dropped.
    #[serde(default)]
    pub drop_types: Vec<String>,
}

impl Settings {
    /// Drops the message when its type is listed, forwards it otherwise.
    fn keep(&self, kind: &str, event: Event) -> HandlerResult {
        if self.drop_types.iter().any(|t| t == kind) {
            return Err(Error::drop_event(format!("{kind} messages are dropped")));
        }
        Ok(Some(event))
    }
}

/// The insert function.
#[derive(Debug)]
pub struct Filter;

impl Function for Filter {
    type Settings = Settings;

    fn on_track(event: Track, settings: &Settings) -> HandlerResult {
        if let Some(name) = event.event.as_deref()
            && settings.drop_events.iter().any(|d| d == name)
        {
            return Err(Error::drop_event(format!("{name:?} events are dropped")));
        }
        settings.keep("track", Event::Track(event))
    }

    fn on_identify(event: Identify, settings: &Settings) -> HandlerResult {
        settings.keep("identify", Event::Identify(event))
    }

    fn on_page(event: Page, settings: &Settings) -> HandlerResult {
        settings.keep("page", Event::Page(event))
    }

    fn on_screen(event: Screen, settings: &Settings) -> HandlerResult {
        settings.keep("screen", Event::Screen(event))
    }

    fn on_group(event: Group, settings: &Settings) -> HandlerResult {
        settings.keep("group", Event::Group(event))
    }

    fn on_alias(event: Alias, settings: &Settings) -> HandlerResult {
        settings.keep("alias", Event::Alias(event))
    }
}

segfn_sdk::export!(Filter);

#[cfg(test)]
mod tests {
    use super::*;
    use segfn_sdk::OutcomeKind;
    use segfn_sdk::testing::handle;
    use serde_json::json;

    #[test]
    fn drops_what_the_settings_name_and_forwards_the_rest_unchanged() {
        let settings = json!({"dropEvents": ["Debug Ping"], "dropTypes": ["page"]});
        let dropped = handle::<Filter>(
            json!({"type": "track", "event": "Debug Ping"}),
            settings.clone(),
        );
        assert_eq!(dropped.kind, OutcomeKind::Dropped);
        let page = handle::<Filter>(json!({"type": "page", "name": "Home"}), settings.clone());
        assert_eq!(page.kind, OutcomeKind::Dropped);
        let kept = json!({"event": "Order Completed", "properties": {"total": 12.50, "n": 18446744073709551617u128}, "type": "track"});
        let result = handle::<Filter>(kept.clone(), settings);
        assert_eq!(result.kind, OutcomeKind::Success);
        assert_eq!(
            serde_json::to_string(&result.output.unwrap()).unwrap(),
            serde_json::to_string(&kept).unwrap(),
            "forwarded exactly, key order included"
        );
    }

    #[test]
    fn no_settings_forwards_everything() {
        let result = handle::<Filter>(json!({"type": "identify", "userId": "u1"}), json!({}));
        assert_eq!(result.kind, OutcomeKind::Success);
    }
}
