//! {{Name}}: a Segment insert function. It runs before a destination: drops the track
//! events a customer does not want delivered, adds the customer's fixed properties to the
//! rest, and passes every other message on unchanged.

use segfn_sdk::schemars::{self, JsonSchema};
use segfn_sdk::{
    Alias, Error, Function, Group, HandlerResult, Identify, Object, Page, Screen, Track,
};
use serde::Deserialize;

/// The settings a customer fills in when they add the function in Segment. Each
/// field's doc comment is its description in `segfn schema` and `segfn docs`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Names of the track events to drop: they are not delivered.
    #[serde(default)]
    pub drop_events: Vec<String>,
    /// Properties added to every track event that is kept (a property the event has
    /// already keeps its value).
    #[serde(default)]
    pub add_properties: Object,
}

/// The function. An insert function returns the message to pass on (`Ok(Some(..))`) or
/// `DropEvent`; the message comes back exactly as it arrived where it was not changed.
#[derive(Debug)]
pub struct {{Name}};

impl Function for {{Name}} {
    type Settings = Settings;

    fn on_track(mut event: Track, settings: &Settings) -> HandlerResult {
        let name = event.event().unwrap_or_default();
        if settings.drop_events.iter().any(|d| d == name) {
            return Err(Error::drop_event(format!("{name:?} events are dropped")));
        }
        if !settings.add_properties.is_empty() {
            let properties = event.properties.get_or_insert_default();
            for (key, value) in &settings.add_properties {
                properties
                    .entry(key.clone())
                    .or_insert_with(|| value.clone());
            }
        }
        Ok(Some(event.into()))
    }

    fn on_identify(event: Identify, _: &Settings) -> HandlerResult {
        Ok(Some(event.into()))
    }

    fn on_page(event: Page, _: &Settings) -> HandlerResult {
        Ok(Some(event.into()))
    }

    fn on_screen(event: Screen, _: &Settings) -> HandlerResult {
        Ok(Some(event.into()))
    }

    fn on_group(event: Group, _: &Settings) -> HandlerResult {
        Ok(Some(event.into()))
    }

    fn on_alias(event: Alias, _: &Settings) -> HandlerResult {
        Ok(Some(event.into()))
    }
}

// `schema`: the module also describes its settings, for `segfn schema` and `segfn docs`.
segfn_sdk::export!({{Name}}, schema);

#[cfg(test)]
mod tests {
    use super::*;
    use segfn_sdk::{OutcomeKind, testing};
    use serde_json::json;

    fn sample(file: &str) -> serde_json::Value {
        let path = format!("{}/events/{file}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn listed_events_are_dropped() {
        let settings = json!({"dropEvents": ["Signed Up"]});
        let handled = testing::handle::<{{Name}}>(sample("track.json"), settings);
        assert_eq!(handled.kind, OutcomeKind::Dropped);
        assert_eq!(handled.class(), Some("DropEvent"));
    }

    #[test]
    fn kept_events_get_the_added_properties_and_keep_their_own() {
        let settings = json!({"addProperties": {"plan": "enterprise", "username": "overridden?"}});
        let handled = testing::handle::<{{Name}}>(sample("track.json"), settings);
        assert_eq!(handled.kind, OutcomeKind::Success, "{handled:?}");
        let output = handled.output.unwrap();
        assert_eq!(output["properties"]["plan"], "enterprise");
        assert_eq!(output["properties"]["username"], "pgibbons");
    }

    #[test]
    fn other_messages_pass_unchanged() {
        let event = sample("identify.json");
        let handled = testing::handle::<{{Name}}>(event.clone(), json!({}));
        assert_eq!(handled.output, Some(event));
    }
}
