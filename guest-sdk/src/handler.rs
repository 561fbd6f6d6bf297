//! The `Function` trait authors implement, and the dispatch from an envelope to it.

use crate::abi::{CallOf, EnvelopeWire, EventResult, GuestResult, OutcomeKind, VERSION};
use crate::error::Error;
use crate::event::{Alias, Delete, Event, Group, Identify, Page, Screen, Track};
use crate::source::{Emitted, Segment, WebhookRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// What a handler returns: `Ok(None)` when done, `Ok(Some(event))` to forward an event
/// (insert functions), or an [`Error`].
///
/// ```
/// use segfn_sdk::{Error, HandlerResult, Track};
///
/// fn on_track(mut event: Track) -> HandlerResult {
///     if event.event() == Some("Test") {
///         return Err(Error::drop_event("test events stay here"));
///     }
///     event.properties.get_or_insert_default().insert("seen".into(), true.into());
///     Ok(Some(event.into())) // an insert function passes the event on
/// }
/// assert!(on_track(Track::new("Test")).is_err());
/// ```
pub type HandlerResult = Result<Option<Event>, Error>;

/// A translation function: one handler per Segment event type, as in Segment's
/// `onTrack(event, settings)`, `onIdentify(...)`, ... A handler left out means
/// `EventNotSupported`, exactly as in Segment.
///
/// ```
/// use segfn_sdk::{Function, HandlerResult, Track, Request, fetch};
///
/// #[derive(serde::Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct Settings { api_key: String }
///
/// struct MyFunction;
///
/// impl Function for MyFunction {
///     type Settings = Settings;
///
///     fn on_track(event: Track, settings: &Settings) -> HandlerResult {
///         let response = fetch(
///             Request::post("https://api.example.com/events")
///                 .bearer_auth(&settings.api_key)
///                 .json(&event)?,
///         )?;
///         if !response.ok() {
///             return Err(segfn_sdk::Error::retry(format!("partner answered {}", response.status)));
///         }
///         Ok(None)
///     }
/// }
///
/// segfn_sdk::export!(MyFunction);
/// ```
pub trait Function {
    /// The function's settings, as configured per instance (Segment names them in
    /// camelCase: `#[serde(rename_all = "camelCase")]`). Settings that do not fit give
    /// the `invalid_settings` outcome. Use [`crate::NoSettings`] when there are none.
    type Settings: DeserializeOwned;

    /// `onTrack`.
    fn on_track(event: Track, settings: &Self::Settings) -> HandlerResult {
        let _ = (event, settings);
        Err(unsupported("track"))
    }
    /// `onIdentify`.
    fn on_identify(event: Identify, settings: &Self::Settings) -> HandlerResult {
        let _ = (event, settings);
        Err(unsupported("identify"))
    }
    /// `onPage`.
    fn on_page(event: Page, settings: &Self::Settings) -> HandlerResult {
        let _ = (event, settings);
        Err(unsupported("page"))
    }
    /// `onScreen`.
    fn on_screen(event: Screen, settings: &Self::Settings) -> HandlerResult {
        let _ = (event, settings);
        Err(unsupported("screen"))
    }
    /// `onGroup`.
    fn on_group(event: Group, settings: &Self::Settings) -> HandlerResult {
        let _ = (event, settings);
        Err(unsupported("group"))
    }
    /// `onAlias`.
    fn on_alias(event: Alias, settings: &Self::Settings) -> HandlerResult {
        let _ = (event, settings);
        Err(unsupported("alias"))
    }
    /// `onDelete`.
    fn on_delete(event: Delete, settings: &Self::Settings) -> HandlerResult {
        let _ = (event, settings);
        Err(unsupported("delete"))
    }

    /// `onRequest`: a source function's webhook. Make Segment calls with
    /// `segment.send(source::track(...)...)` and `segment.set(source::object(...))`;
    /// they are the result, in order. An error fails the request (a
    /// `ValidationError` rejects it, a `RetryError` asks the sender to retry). Without
    /// an override a request is `EventNotSupported`, as in Segment.
    fn on_request(
        request: WebhookRequest,
        settings: &Self::Settings,
        segment: &mut Segment,
    ) -> Result<(), Error> {
        let _ = (request, settings, segment);
        Err(Error::EventNotSupported(
            crate::abi::NO_REQUEST_HANDLER.into(),
        ))
    }

    /// `onBatch`: a batch of events of mixed types. Return one result per event, in
    /// order (a partial failure), or an error for the whole batch. Without an override,
    /// each event goes to its own handler, as Segment does for functions without
    /// `onBatch`.
    fn on_batch(
        events: Vec<Event>,
        settings: &Self::Settings,
    ) -> Result<Vec<HandlerResult>, Error> {
        Ok(events
            .into_iter()
            .map(|event| dispatch::<Self>(event, settings))
            .collect())
    }
}

/// What a handler left out answers; `segfn docs` recognises the message (see
/// [`crate::abi::no_handler_message`]).
fn unsupported(kind: &str) -> Error {
    Error::EventNotSupported(crate::abi::no_handler_message(kind))
}

/// Calls the handler for the event's type, as the SDK does for a single event and for
/// each event of a batch without `on_batch`.
///
/// ```
/// use segfn_sdk::{Event, Function, HandlerResult, NoSettings, OutcomeKind, Track, batch};
///
/// struct TracksOnly;
/// impl Function for TracksOnly {
///     type Settings = NoSettings;
///     fn on_track(_: Track, _: &NoSettings) -> HandlerResult { Ok(None) }
/// }
/// let page = Event::from_value(serde_json::json!({"type": "page"})).unwrap();
/// let result = batch::dispatch::<TracksOnly>(page, &NoSettings);
/// assert_eq!(result.unwrap_err().kind(), OutcomeKind::UnsupportedEventType);
/// ```
pub fn dispatch<F: Function + ?Sized>(event: Event, settings: &F::Settings) -> HandlerResult {
    match event {
        Event::Track(e) => F::on_track(e, settings),
        Event::Identify(e) => F::on_identify(e, settings),
        Event::Page(e) => F::on_page(e, settings),
        Event::Screen(e) => F::on_screen(e, settings),
        Event::Group(e) => F::on_group(e, settings),
        Event::Alias(e) => F::on_alias(e, settings),
        Event::Delete(e) => F::on_delete(e, settings),
        unknown @ Event::Unknown(_) => match unknown.type_name() {
            Some(name) => Err(Error::EventNotSupported(format!(
                "event type {name:?} is not supported"
            ))),
            None => Err(Error::Other("the message has no \"type\" field".into())),
        },
    }
}

/// What one envelope came to, before it is written for the host: the handlers' own
/// results, so that native tests can see the error classes.
#[derive(Debug)]
pub(crate) enum Handled {
    /// The call failed as a whole: the envelope or the settings did not fit, or
    /// `on_batch` failed or returned the wrong number of results. The outcome is the
    /// error's, except for settings, whose `invalid_settings` no [`Error`] variant means.
    Failed(OutcomeKind, Error),
    /// One event's result (boxed: an event is much larger than the other variants).
    Event(Box<HandlerResult>),
    /// A batch's results, one per input, in input order.
    Batch(Vec<HandlerResult>),
    /// A source function's calls, or why the request failed.
    Request(Result<Emitted, Error>),
}

impl Handled {
    /// A whole-call failure with the error's own outcome.
    fn failed(error: Error) -> Handled {
        Handled::Failed(error.kind(), error)
    }
}

/// Handles one envelope (the JSON the host passes to `segfn_handle`), as a
/// [`GuestResult`]: [`handle_envelope_json`]'s answer, read back.
#[doc(hidden)]
pub fn handle_envelope<F: Function + ?Sized>(input: &[u8]) -> GuestResult {
    let json = handle_envelope_json::<F>(input);
    serde_json::from_slice(&json).unwrap_or_else(|e| GuestResult {
        abi: VERSION,
        result: EventResult {
            kind: OutcomeKind::BadRequest,
            message: Some(format!("the function's result is not valid: {e}")),
            output: None,
        },
        results: None,
    })
}

/// Handles one envelope and writes its [`GuestResult`] as the JSON the host reads. The
/// export that [`crate::export!`] writes calls it. An event a handler returns is written
/// from the event itself, so its unchanged parts are copied as text, never parsed.
#[doc(hidden)]
pub fn handle_envelope_json<F: Function + ?Sized>(input: &[u8]) -> Vec<u8> {
    let handled = run_envelope::<F>(input);
    let (result, results) = match &handled {
        Handled::Failed(kind, error) => (ResultJson::failed(*kind, error), None),
        Handled::Event(result) => (ResultJson::of(result), None),
        Handled::Request(Ok(emitted)) => (
            ResultJson {
                kind: OutcomeKind::Success,
                message: None,
                output: Some(OutputJson::Emitted(emitted)),
            },
            None,
        ),
        Handled::Request(Err(error)) => (ResultJson::failed(error.kind(), error), None),
        Handled::Batch(results) => (
            ResultJson {
                kind: OutcomeKind::Success,
                message: None,
                output: None,
            },
            Some(results.iter().map(ResultJson::of).collect()),
        ),
    };
    let written = serde_json::to_vec(&GuestResultJson {
        abi: VERSION,
        result,
        results,
    });
    // Cannot fail: events, emitted calls and messages all serialise to JSON.
    written.unwrap_or_default()
}

/// A [`GuestResult`] as it is written, borrowing what it carries (same field names,
/// checked by `handle_envelope`, which reads it back in every test that runs a handler).
#[derive(Serialize)]
struct GuestResultJson<'a> {
    abi: u32,
    #[serde(flatten)]
    result: ResultJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    results: Option<Vec<ResultJson<'a>>>,
}

/// An [`EventResult`] as it is written.
#[derive(Serialize)]
struct ResultJson<'a> {
    kind: OutcomeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<OutputJson<'a>>,
}

/// What a result carries: an event an insert function returned, or a source function's
/// calls.
#[derive(Serialize)]
#[serde(untagged)]
enum OutputJson<'a> {
    Event(&'a Event),
    Emitted(&'a Emitted),
}

impl<'a> ResultJson<'a> {
    fn of(result: &'a HandlerResult) -> Self {
        match result {
            Ok(output) => ResultJson {
                kind: OutcomeKind::Success,
                message: None,
                output: output.as_ref().map(OutputJson::Event),
            },
            Err(error) => ResultJson::failed(error.kind(), error),
        }
    }

    fn failed(kind: OutcomeKind, error: &'a Error) -> Self {
        ResultJson {
            kind,
            message: Some(error.message()),
            output: None,
        }
    }
}

/// Reads an envelope and runs it through `F`.
pub(crate) fn run_envelope<F: Function + ?Sized>(input: &[u8]) -> Handled {
    let mut envelope: EnvelopeWire<&RawValue> = match serde_json::from_slice(input) {
        Ok(envelope) => envelope,
        Err(e) => {
            return Handled::failed(Error::Other(format!(
                "the host's envelope is not valid: {e}"
            )));
        }
    };
    if envelope.abi != VERSION {
        return Handled::failed(Error::Other(format!(
            "the host speaks ABI v{}, this function v{VERSION}",
            envelope.abi
        )));
    }
    let call = match envelope.take_call() {
        Ok(call) => call,
        Err(e) => {
            return Handled::failed(Error::Other(format!(
                "the host's envelope is not valid: {e}"
            )));
        }
    };
    let settings = match crate::json::from_value::<F::Settings>(&envelope.settings) {
        Ok(settings) => settings,
        Err(e) => {
            let error = Error::Other(format!("settings: {e}"));
            return Handled::Failed(OutcomeKind::InvalidSettings, error);
        }
    };
    match call {
        CallOf::Event(event) => Handled::Event(Box::new(match Event::from_json(event.get()) {
            Ok(event) => dispatch::<F>(event, &settings),
            Err(e) => Err(Error::Other(e)),
        })),
        CallOf::Batch(events) => run_batch::<F>(events, &settings),
        CallOf::Request(request) => {
            Handled::Request(WebhookRequest::from_value(request).and_then(|request| {
                let mut segment = Segment::default();
                F::on_request(request, &settings, &mut segment)?;
                Ok(segment.into_emitted())
            }))
        }
    }
}

fn run_batch<F: Function + ?Sized>(events: Vec<&RawValue>, settings: &F::Settings) -> Handled {
    // Events that are not messages get their own result; the batch handler sees the rest,
    // and its results are put back in their input positions.
    let mut slots: Vec<Option<HandlerResult>> = Vec::with_capacity(events.len());
    let mut parsed = Vec::with_capacity(events.len());
    for text in events {
        match Event::from_json(text.get()) {
            Ok(event) => {
                slots.push(None);
                parsed.push(event);
            }
            Err(e) => slots.push(Some(Err(Error::Other(e)))),
        }
    }
    let expected = parsed.len();
    let results = match F::on_batch(parsed, settings) {
        Ok(results) if results.len() == expected => results,
        Ok(results) => {
            return Handled::failed(Error::Other(format!(
                "on_batch returned {} results for {expected} events",
                results.len()
            )));
        }
        Err(error) => return Handled::failed(error),
    };
    let mut results = results.into_iter();
    Handled::Batch(
        slots
            .into_iter()
            .map(|slot| {
                slot.or_else(|| results.next())
                    .expect("one result per parsed event")
            })
            .collect(),
    )
}
