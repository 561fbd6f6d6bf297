//! Helpers for `on_batch` that keep one result per event in input order: one request per
//! event sent concurrently ([`fetch_each`]), and a partial batch whose chosen events go
//! to the partner together while the rest take their own handlers ([`partial`]).

use crate::error::Error;
use crate::event::Event;
use crate::fetch::{Request, Response, fetch_all};
use crate::handler::{Function, HandlerResult};

pub use crate::handler::dispatch;

/// One request per event, all sent at once with [`fetch_all`]: `request` builds an
/// event's request (or fails it alone), `check` turns its response into the event's
/// result. A fetch error fails only its event ([`crate::FetchError`]'s `?` conversion).
///
/// ```
/// use segfn_sdk::{Error, Event, HandlerResult, Request, Response, batch};
///
/// fn on_batch(events: Vec<Event>) -> Vec<HandlerResult> {
///     batch::fetch_each(
///         &events,
///         |event| match event {
///             Event::Track(t) => Request::post("https://api.partner.example/track").json(t),
///             other => Err(Error::not_supported(format!("{:?}", other.type_name()))),
///         },
///         |response: Response| if response.ok() { Ok(None) } else { Err(Error::retry("later")) },
///     )
/// }
/// ```
pub fn fetch_each(
    events: &[Event],
    mut request: impl FnMut(&Event) -> Result<Request, Error>,
    mut check: impl FnMut(Response) -> HandlerResult,
) -> Vec<HandlerResult> {
    let mut results: Vec<HandlerResult> = Vec::with_capacity(events.len());
    let mut requests = Vec::new();
    let mut sent_for = Vec::new();
    for event in events {
        match request(event) {
            Ok(req) => {
                sent_for.push(results.len());
                requests.push(req);
                results.push(Ok(None));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    for (i, response) in sent_for.into_iter().zip(fetch_all(requests)) {
        results[i] = response.map_err(Error::from).and_then(&mut check);
    }
    results
}

/// A partial batch: the events `pick` chooses go to `bulk` together, in order; the others
/// go to their own handlers (`F::on_identify`, ...), as without `on_batch`. `bulk` returns
/// one result per event it was given; the results of both come back in input order.
///
/// ```
/// use segfn_sdk::{Error, Event, Function, HandlerResult, Identify, NoSettings, batch};
///
/// struct Partner;
/// impl Function for Partner {
///     type Settings = NoSettings;
///     fn on_identify(event: Identify, _: &NoSettings) -> HandlerResult {
///         Ok(None) // one request per identify
///     }
///     fn on_batch(events: Vec<Event>, settings: &NoSettings) -> Result<Vec<HandlerResult>, Error> {
///         batch::partial::<Self>(
///             events,
///             settings,
///             |event| matches!(event, Event::Track(_)),
///             |tracks| Ok(tracks.iter().map(|_| Ok(None)).collect()), // one bulk request
///         )
///     }
/// }
/// ```
pub fn partial<F: Function + ?Sized>(
    events: Vec<Event>,
    settings: &F::Settings,
    mut pick: impl FnMut(&Event) -> bool,
    bulk: impl FnOnce(Vec<Event>) -> Result<Vec<HandlerResult>, Error>,
) -> Result<Vec<HandlerResult>, Error> {
    let mut results: Vec<Option<HandlerResult>> = Vec::with_capacity(events.len());
    let mut picked = Vec::new();
    for event in events {
        if pick(&event) {
            picked.push(event);
            results.push(None);
        } else {
            results.push(Some(dispatch::<F>(event, settings)));
        }
    }
    let expected = picked.len();
    let bulk_results = if expected == 0 {
        Vec::new()
    } else {
        bulk(picked)?
    };
    if bulk_results.len() != expected {
        return Err(Error::other(format!(
            "the bulk handler returned {} results for {expected} events",
            bulk_results.len()
        )));
    }
    let mut bulk_results = bulk_results.into_iter();
    Ok(results
        .into_iter()
        .map(|slot| slot.unwrap_or_else(|| bulk_results.next().expect("counted above")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::OutcomeKind;
    use crate::event::Identify;
    use serde::de::IgnoredAny as NoSettings;

    struct Partner;
    impl Function for Partner {
        type Settings = NoSettings;
        fn on_identify(_: Identify, _: &NoSettings) -> HandlerResult {
            Err(Error::validation("identify handler ran"))
        }
    }

    fn events() -> Vec<Event> {
        ["track", "identify", "page", "track"]
            .iter()
            .map(|t| Event::from_value(serde_json::json!({"type": t})).unwrap())
            .collect()
    }

    #[test]
    fn partial_keeps_input_order() {
        let results = partial::<Partner>(
            events(),
            &NoSettings,
            |event| matches!(event, Event::Track(_)),
            |tracks| {
                assert_eq!(tracks.len(), 2);
                Ok(vec![Ok(None), Err(Error::retry("second track"))])
            },
        )
        .unwrap();
        let kinds: Vec<_> = results
            .iter()
            .map(|r| {
                r.as_ref()
                    .map_or_else(Error::kind, |_| OutcomeKind::Success)
            })
            .collect();
        assert_eq!(
            kinds,
            [
                OutcomeKind::Success,
                OutcomeKind::MessageRejected,
                OutcomeKind::UnsupportedEventType,
                OutcomeKind::Retry
            ]
        );
    }

    #[test]
    fn partial_refuses_a_wrong_number_of_bulk_results() {
        let error = partial::<Partner>(
            events(),
            &NoSettings,
            |event| matches!(event, Event::Track(_)),
            |_| Ok(vec![Ok(None)]),
        )
        .unwrap_err();
        assert!(
            error.message().contains("1 results for 2 events"),
            "{error}"
        );
    }
}
