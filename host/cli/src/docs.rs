//! The integration's documentation page, in Markdown, following Segment's partner
//! documentation template (front matter, introduction, Getting Started, Supported
//! methods with one section per call the function handles) plus the settings table and
//! how the function's errors become Segment's delivery outcomes; for a source function,
//! a source's page (the webhook to set up, what it sends to Segment, what a failed
//! webhook means). What only the partner knows is left as HTML comments to fill in.

use crate::schema::Setting;
use segfn_engine::outcome::{OUTCOMES, OutcomeKind};
use segfn_sdk::EventType;
use std::fmt::Write as _;

/// What the page is made from.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    /// The integration's display name ("Acme"); the title adds "Destination".
    pub name: String,
    /// One or two sentences about the partner (the crate's description by default).
    pub introduction: String,
    /// Who maintains it, and their support address, when known.
    pub maintainer: Option<String>,
    /// The support team's email address.
    pub support_email: Option<String>,
    /// The settings, in order.
    pub settings: &'a [Setting],
    /// The event types the function handles.
    pub handled: &'a [EventType],
    /// A source function (it handles webhook requests): a source's page.
    pub source: bool,
}

/// A display name from a crate name: `acme-destination` → "Acme Destination".
pub fn display_name(crate_name: &str) -> String {
    crate_name
        .split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Renders the page.
pub fn render(page: &Page<'_>) -> String {
    let mut out = String::new();
    let name = page.name.trim();
    let kind = if page.source { "Source" } else { "Destination" };
    let lower = kind.to_ascii_lowercase();
    let title = if name.ends_with(kind) {
        name.to_owned()
    } else {
        format!("{name} {kind}")
    };
    let _ = write!(out, "---\ntitle: {title}\n---\n\n");
    out.push_str(
        "<!-- Written by `segfn docs` from the function's code: its settings, the calls it \
         handles and how its errors reach Segment. Fill in the comments, then follow the \
         submission steps of Segment's partner documentation template. -->\n\n",
    );
    if page.introduction.trim().is_empty() {
        out.push_str(
            "<!-- One or two sentences about your company and what it offers customers, with a link. -->\n\n",
        );
    } else {
        let _ = write!(out, "{}\n\n", page.introduction.trim());
    }
    match (&page.maintainer, &page.support_email) {
        (Some(who), Some(email)) => {
            let _ = write!(
                out,
                "This {lower} is maintained by {who}. For any issues with the {lower}, [contact the {who} Support team](mailto:{email}).\n\n"
            );
        }
        (Some(who), None) => {
            let _ = write!(out, "This {lower} is maintained by {who}.\n\n");
        }
        _ => {
            let _ = write!(
                out,
                "<!-- This {lower} is maintained by YOUR COMPANY. For any issues with the {lower}, [contact the YOUR COMPANY Support team](mailto:support@example.com). -->\n\n"
            );
        }
    }
    if page.source {
        source_getting_started(&mut out, name, page.settings);
        source_calls(&mut out, name);
        settings_table(&mut out, page.settings, &lower);
        source_errors(&mut out, name);
    } else {
        getting_started(&mut out, name, page.settings);
        supported_methods(&mut out, name, page.handled);
        settings_table(&mut out, page.settings, &lower);
        errors(&mut out, name);
    }
    out
}

/// The required settings as a list, one per line.
fn required_settings(out: &mut String, settings: &[Setting]) {
    for s in settings.iter().filter(|s| s.required) {
        let secret = if s.sensitive { " (secret)" } else { "" };
        let _ = write!(out, "   - **{}**{secret}", s.label);
        if !s.description.is_empty() {
            let _ = write!(out, ": {}", one_line(&s.description));
        }
        out.push('\n');
    }
}

fn source_getting_started(out: &mut String, name: &str, settings: &[Setting]) {
    out.push_str("## Getting Started\n\n");
    let _ = write!(
        out,
        "1. From the Sources catalog page in the Segment App, click **Add Source**.\n\
         2. Search for \"{name}\" in the Sources Catalog, select it, and click **Add Source**.\n\
         3. Give the source a name and click **Add Source** again.\n\
         4. Copy the source's webhook URL and enter it in {name} as the address its webhooks go to. <!-- Where in {name}'s app, and which webhook events to turn on. -->\n"
    );
    if settings.iter().any(|s| s.required) {
        let _ = writeln!(
            out,
            "5. Enter the required settings in the \"{name}\" source settings in Segment:"
        );
        required_settings(out, settings);
    }
    out.push('\n');
}

fn source_calls(out: &mut String, name: &str) {
    out.push_str("## Events\n\n");
    let _ = write!(
        out,
        "{name} sends a webhook to Segment when something happens in {name}; the source turns each one into Segment calls, which appear in the source's Debugger and go on to the destinations connected to it.\n\n\
         <!-- Which of {name}'s webhooks become which calls: a table of event names (Track) and traits (Identify), and any objects set. -->\n\n"
    );
}

fn source_errors(out: &mut String, name: &str) {
    out.push_str("## Errors and retries\n\n");
    let _ = write!(
        out,
        "When the source cannot turn a webhook into calls, Segment answers {name} with an error and sends none of that webhook's calls:\n\n"
    );
    out.push_str("| When the function | Then |\n|---|---|\n");
    for (when, then) in [
        (
            "handles the webhook",
            "its calls go to Segment, in the order made",
        ),
        (
            "ends with `RetryError`, or takes longer than 5 seconds",
            "the webhook fails with a status that asks the sender to retry it",
        ),
        (
            "ends with `ValidationError`, `InvalidEventPayload` or any other error",
            "the webhook fails; sending it again gives the same result",
        ),
    ] {
        let _ = writeln!(out, "| {when} | {then} |");
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "<!-- Whether and how {name} retries a failed webhook. -->"
    );
}

fn getting_started(out: &mut String, name: &str, settings: &[Setting]) {
    out.push_str("## Getting Started\n\n");
    let _ = write!(
        out,
        "1. From the Destinations catalog page in the Segment App, click **Add Destination**.\n\
         2. Search for \"{name}\" in the Destinations Catalog, and select the \"{name}\" destination.\n\
         3. Choose which Source should send data to the \"{name}\" destination.\n"
    );
    if !settings.iter().any(|s| s.required) {
        out.push_str(
            "4. No setting is required; the optional ones are listed under [Settings](#settings).\n",
        );
    } else {
        let _ = writeln!(
            out,
            "4. Enter the required settings in the \"{name}\" destination settings in Segment:"
        );
        required_settings(out, settings);
    }
    out.push('\n');
}

/// Per call: the Segment Spec page, what the call is for, and an example call.
fn call_text(event_type: EventType) -> (&'static str, &'static str, &'static str) {
    match event_type {
        EventType::Page => (
            "Page",
            "record the pages your users view",
            "```js\nanalytics.page()\n```",
        ),
        EventType::Screen => (
            "Screen",
            "record the screens your users view in your mobile app",
            "```obj-c\n[[SEGAnalytics sharedAnalytics] screen:@\"Home\"];\n```",
        ),
        EventType::Identify => (
            "Identify",
            "tie a user to their actions and record traits about them",
            "```js\nanalytics.identify('userId123', {\n  email: 'john.doe@example.com'\n});\n```",
        ),
        EventType::Track => (
            "Track",
            "record the actions your users perform",
            "```js\nanalytics.track('Login Button Clicked')\n```",
        ),
        EventType::Group => (
            "Group",
            "associate a user with a group, such as a company or an account",
            "```js\nanalytics.group('0e8c78ea9d97a7b8185e8632', {\n  name: 'Initech'\n});\n```",
        ),
        EventType::Alias => (
            "Alias",
            "merge two identities of the same user",
            "```js\nanalytics.alias('507f191e81011')\n```",
        ),
        EventType::Delete => ("Delete", "delete a user's data", ""),
    }
}

fn supported_methods(out: &mut String, name: &str, handled: &[EventType]) {
    out.push_str("## Supported methods\n\n");
    if handled.is_empty() {
        let _ = write!(out, "{name} handles none of Segment's calls.\n\n");
        return;
    }
    let _ = write!(
        out,
        "{name} supports the following methods, as specified in the [Segment Spec](/docs/connections/spec).\n\n"
    );
    for &event_type in segfn_engine::describe::EVENT_TYPES
        .iter()
        .filter(|t| handled.contains(t))
    {
        let (call, purpose, example) = call_text(event_type);
        let lower = event_type.as_str();
        let _ = writeln!(out, "### {call}\n");
        if event_type == EventType::Delete {
            let _ = write!(
                out,
                "Segment sends a Delete call when a user deletion request (from the Privacy Portal or the Public API) reaches the destination, to {purpose}.\n\n"
            );
        } else {
            let _ = write!(
                out,
                "Send [{call}](/docs/connections/spec/{lower}) calls to {purpose}. For example:\n\n{example}\n\n"
            );
        }
        // The customer's words: what the destination does with the call, not which
        // function of its code receives it.
        let _ = write!(
            out,
            "{name} receives every {call} call from the sources connected to it.\n\
             <!-- What {call} calls become in {name}, and where their data appears. -->\n\n"
        );
    }
    let unsupported: Vec<&str> = segfn_engine::describe::EVENT_TYPES
        .iter()
        .filter(|t| !handled.contains(t))
        .map(|&t| call_text(t).0)
        .collect();
    if !unsupported.is_empty() {
        let _ = write!(
            out,
            "{name} does not support {} calls: Segment shows them as Unsupported Event Type and does not retry them.\n\n",
            or_list(&unsupported)
        );
    }
}

fn settings_table(out: &mut String, settings: &[Setting], kind: &str) {
    out.push_str("## Settings\n\n");
    if settings.is_empty() {
        let _ = write!(out, "This {kind} has no settings.\n\n");
        return;
    }
    out.push_str(
        "| Setting | Name | Type | Required | Secret | Default | Description |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for s in settings {
        let default = s
            .default
            .as_ref()
            .map(|d| match d.as_str() {
                Some(text) => format!("`{text}`"),
                None => format!("`{d}`"),
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | {} | {} |",
            cell(&s.label),
            s.name,
            s.kind.label(),
            if s.required { "Yes" } else { "No" },
            if s.sensitive { "Yes" } else { "No" },
            cell(&default),
            cell(&s.description)
        );
    }
    out.push_str("\nSecret settings are not shown again once saved.\n\n");
}

/// What makes the function end with each outcome, in Segment's words.
fn cause(kind: OutcomeKind) -> &'static str {
    match kind {
        OutcomeKind::Success => "handles the event",
        OutcomeKind::Retry => {
            "ends with `RetryError`, takes longer than 5 seconds, or cannot reach the partner API"
        }
        OutcomeKind::BadRequest => "ends with any other error, or fails unexpectedly",
        OutcomeKind::InvalidSettings => "is given settings that do not fit",
        OutcomeKind::MessageRejected => "ends with `InvalidEventPayload` or `ValidationError`",
        OutcomeKind::UnsupportedEventType => {
            "ends with `EventNotSupported`, or has no handler for the call"
        }
        OutcomeKind::Dropped => "ends with `DropEvent` (insert functions)",
    }
}

fn errors(out: &mut String, name: &str) {
    out.push_str("## Errors and retries\n\n");
    let _ = write!(
        out,
        "{name} reports each event's outcome with Segment's error types. Segment shows the outcome in the destination's Event Delivery tab and decides from it whether to send the event again:\n\n"
    );
    out.push_str("| When the function | Segment shows | Segment then |\n|---|---|---|\n");
    // `DropEvent` is an insert function's; a destination never ends with it.
    for row in OUTCOMES
        .iter()
        .rev()
        .filter(|row| row.kind != OutcomeKind::Dropped)
    {
        let then = match row.kind {
            OutcomeKind::Success => "counts it as delivered",
            _ if row.retried => "retries it with backoff, for up to four hours",
            _ => "discards it (no retry)",
        };
        let _ = writeln!(out, "| {} | {} | {then} |", cause(row.kind), row.label);
    }
    out.push('\n');
    out.push_str(
        "<!-- Name the partner API answers behind each row, e.g. which statuses ask for a retry. -->\n",
    );
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text fit for a table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SettingType;
    use serde_json::json;

    fn settings() -> Vec<Setting> {
        vec![
            Setting {
                name: "apiKey".into(),
                label: "API Key".into(),
                description: "Your key.".into(),
                kind: SettingType::String,
                required: true,
                sensitive: true,
                default: None,
            },
            Setting {
                name: "events".into(),
                label: "Events".into(),
                description: "Which | events".into(),
                kind: SettingType::Array,
                required: false,
                sensitive: false,
                default: Some(json!(["a"])),
            },
        ]
    }

    fn page(settings: &[Setting], handled: &[EventType]) -> String {
        render(&Page {
            name: "Acme".into(),
            introduction: "Acme does things.".into(),
            maintainer: Some("Acme".into()),
            support_email: Some("help@acme.example".into()),
            settings,
            handled,
            source: false,
        })
    }

    #[test]
    fn a_source_function_gets_a_sources_page() {
        let md = render(&Page {
            name: "Acme".into(),
            introduction: String::new(),
            maintainer: Some("Acme".into()),
            support_email: None,
            settings: &settings(),
            handled: &[],
            source: true,
        });
        assert!(md.starts_with("---\ntitle: Acme Source\n---\n"), "{md}");
        assert!(md.contains("This source is maintained by Acme."));
        assert!(md.contains("click **Add Source**"));
        assert!(md.contains("webhook URL"));
        assert!(md.contains("5. Enter the required settings in the \"Acme\" source settings"));
        assert!(md.contains("   - **API Key** (secret): Your key.\n"));
        for gone in ["Supported methods", "Destination", "Unsupported Event Type"] {
            assert!(!md.contains(gone), "{gone:?} on a source's page:\n{md}");
        }
        assert!(md.contains("| ends with `RetryError`, or takes longer than 5 seconds |"));
    }

    #[test]
    fn follows_the_template_sections_in_order() {
        let md = page(&settings(), &[EventType::Track, EventType::Identify]);
        let at = |s: &str| {
            md.find(s)
                .unwrap_or_else(|| panic!("{s:?} missing from\n{md}"))
        };
        assert!(md.starts_with("---\ntitle: Acme Destination\n---\n"));
        assert!(
            at("Acme does things.") < at("## Getting Started")
                && at("## Getting Started") < at("## Supported methods")
                && at("### Identify") < at("### Track")
                && at("### Track") < at("## Settings")
                && at("## Settings") < at("## Errors and retries")
        );
        assert!(md.contains("[contact the Acme Support team](mailto:help@acme.example)"));
        assert!(md.contains("   - **API Key** (secret): Your key.\n"));
        assert!(!md.contains("### Page"));
        assert!(md.contains("Acme does not support Page, Screen, Group, Alias or Delete calls"));
    }

    #[test]
    fn the_settings_table_has_a_row_per_setting() {
        let md = page(&settings(), &[]);
        assert!(md.contains("| API Key | `apiKey` | String | Yes | Yes |  | Your key. |\n"));
        assert!(
            md.contains("| Events | `events` | Array | No | No | `[\"a\"]` | Which \\| events |\n")
        );
        assert!(md.contains("Acme handles none of Segment's calls."));
    }

    #[test]
    fn every_destination_outcome_has_a_row_in_the_errors_table() {
        let md = page(&[], &[EventType::Track]);
        for row in OUTCOMES {
            // Dropped is an insert function's: a destination's page leaves it out.
            let listed = md.contains(cause(row.kind));
            assert_eq!(listed, row.kind != OutcomeKind::Dropped, "{}", row.kind);
        }
        assert!(md.contains(
            "| ends with `RetryError`, takes longer than 5 seconds, or cannot reach the partner API | Retry | retries it with backoff, for up to four hours |"
        ));
        assert!(md.contains("This destination has no settings."));
    }

    #[test]
    fn display_names_come_from_crate_names() {
        assert_eq!(display_name("acme-destination"), "Acme Destination");
        assert_eq!(display_name("forwarder"), "Forwarder");
        assert_eq!(display_name("my_crm"), "My Crm");
    }
}
