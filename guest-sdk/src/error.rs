//! The errors a handler returns, named as Segment names them, and the outcome each means.

use crate::abi::OutcomeKind;
use std::fmt;

/// What a handler can fail with. The first five are Segment's error classes; `Other` is
/// any other error, which Segment reports as a bad request.
///
/// `?` converts the errors a handler usually meets: a [`crate::FetchError`] by its kind
/// (a timeout or network failure becomes `RetryError`, as Segment retries timeouts too;
/// anything else `Other`), JSON, number and UTF-8 errors into `Other`. Any other error,
/// and an `Option` that should have had a value, converts with [`OrError`]:
///
/// ```
/// use segfn_sdk::{Error, OrError, Track};
///
/// fn name(event: &Track) -> Result<&str, Error> {
///     event.event().or_invalid_payload("track event has no name")
/// }
/// assert_eq!(name(&Track::default()).unwrap_err().class(), "InvalidEventPayload");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The function does not handle this type or event: not retried.
    EventNotSupported(String),
    /// The message is missing something the function needs: discarded.
    InvalidEventPayload(String),
    /// The message failed the function's validation: discarded.
    ValidationError(String),
    /// A transient failure: Segment delivers the message again later.
    RetryError(String),
    /// Insert functions: do not forward this message. Not an error in the report.
    DropEvent(String),
    /// Anything else: reported as a bad request and discarded.
    Other(String),
}

impl Error {
    /// `EventNotSupported`.
    pub fn not_supported(message: impl Into<String>) -> Error {
        Error::EventNotSupported(message.into())
    }
    /// `InvalidEventPayload`.
    pub fn invalid_payload(message: impl Into<String>) -> Error {
        Error::InvalidEventPayload(message.into())
    }
    /// `ValidationError`.
    pub fn validation(message: impl Into<String>) -> Error {
        Error::ValidationError(message.into())
    }
    /// `RetryError`.
    pub fn retry(message: impl Into<String>) -> Error {
        Error::RetryError(message.into())
    }
    /// `DropEvent`.
    pub fn drop_event(message: impl Into<String>) -> Error {
        Error::DropEvent(message.into())
    }
    /// Any other failure (a bad request).
    pub fn other(message: impl Into<String>) -> Error {
        Error::Other(message.into())
    }

    /// The outcome this error means.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Error::EventNotSupported(_) => OutcomeKind::UnsupportedEventType,
            Error::InvalidEventPayload(_) | Error::ValidationError(_) => {
                OutcomeKind::MessageRejected
            }
            Error::RetryError(_) => OutcomeKind::Retry,
            Error::DropEvent(_) => OutcomeKind::Dropped,
            Error::Other(_) => OutcomeKind::BadRequest,
        }
    }

    /// The message the function gave.
    pub fn message(&self) -> &str {
        match self {
            Error::EventNotSupported(m)
            | Error::InvalidEventPayload(m)
            | Error::ValidationError(m)
            | Error::RetryError(m)
            | Error::DropEvent(m)
            | Error::Other(m) => m,
        }
    }

    /// Segment's class name, e.g. `RetryError`.
    pub fn class(&self) -> &'static str {
        match self {
            Error::EventNotSupported(_) => "EventNotSupported",
            Error::InvalidEventPayload(_) => "InvalidEventPayload",
            Error::ValidationError(_) => "ValidationError",
            Error::RetryError(_) => "RetryError",
            Error::DropEvent(_) => "DropEvent",
            Error::Other(_) => "Error",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class(), self.message())
    }
}

impl std::error::Error for Error {}

/// An error and its causes, `: `-separated.
fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// `?` on the standard errors a handler meets gives a bad request carrying the error.
macro_rules! other_from {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Error {
            fn from(error: $t) -> Error {
                Error::Other(chain(&error))
            }
        }
    )*};
}
other_from!(
    serde_json::Error,
    std::num::ParseIntError,
    std::num::ParseFloatError,
    std::num::TryFromIntError,
    std::str::ParseBoolError,
    std::str::Utf8Error,
    std::string::FromUtf8Error,
    std::fmt::Error,
);

/// Turns a missing value or a foreign error into one of Segment's error classes, as a
/// JavaScript function would `throw new InvalidEventPayload(...)`. For `Option`, the
/// message is the one given; for `Result`, the error is appended to it.
///
/// ```
/// use segfn_sdk::{OrError, OutcomeKind};
///
/// let plan: Result<u32, _> = "pro".parse::<u32>().or_validation("plan must be a number");
/// let error = plan.unwrap_err();
/// assert_eq!(error.kind(), OutcomeKind::MessageRejected);
/// assert!(error.message().starts_with("plan must be a number: invalid digit"));
/// ```
pub trait OrError<T> {
    /// `InvalidEventPayload`: the message lacks what the function needs.
    fn or_invalid_payload(self, message: impl Into<String>) -> Result<T, Error>;
    /// `ValidationError`: the message failed the function's validation.
    fn or_validation(self, message: impl Into<String>) -> Result<T, Error>;
    /// `RetryError`: a transient failure; Segment delivers the message again.
    fn or_retry(self, message: impl Into<String>) -> Result<T, Error>;
    /// `EventNotSupported`.
    fn or_not_supported(self, message: impl Into<String>) -> Result<T, Error>;
    /// Any other failure (a bad request).
    fn or_other(self, message: impl Into<String>) -> Result<T, Error>;
}

impl<T> OrError<T> for Option<T> {
    fn or_invalid_payload(self, message: impl Into<String>) -> Result<T, Error> {
        self.ok_or_else(|| Error::InvalidEventPayload(message.into()))
    }
    fn or_validation(self, message: impl Into<String>) -> Result<T, Error> {
        self.ok_or_else(|| Error::ValidationError(message.into()))
    }
    fn or_retry(self, message: impl Into<String>) -> Result<T, Error> {
        self.ok_or_else(|| Error::RetryError(message.into()))
    }
    fn or_not_supported(self, message: impl Into<String>) -> Result<T, Error> {
        self.ok_or_else(|| Error::EventNotSupported(message.into()))
    }
    fn or_other(self, message: impl Into<String>) -> Result<T, Error> {
        self.ok_or_else(|| Error::Other(message.into()))
    }
}

impl<T, E: std::error::Error> OrError<T> for Result<T, E> {
    fn or_invalid_payload(self, message: impl Into<String>) -> Result<T, Error> {
        self.map_err(|e| Error::InvalidEventPayload(with_cause(message, &e)))
    }
    fn or_validation(self, message: impl Into<String>) -> Result<T, Error> {
        self.map_err(|e| Error::ValidationError(with_cause(message, &e)))
    }
    fn or_retry(self, message: impl Into<String>) -> Result<T, Error> {
        self.map_err(|e| Error::RetryError(with_cause(message, &e)))
    }
    fn or_not_supported(self, message: impl Into<String>) -> Result<T, Error> {
        self.map_err(|e| Error::EventNotSupported(with_cause(message, &e)))
    }
    fn or_other(self, message: impl Into<String>) -> Result<T, Error> {
        self.map_err(|e| Error::Other(with_cause(message, &e)))
    }
}

fn with_cause(message: impl Into<String>, cause: &dyn std::error::Error) -> String {
    format!("{}: {}", message.into(), chain(cause))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_segment() {
        assert_eq!(
            Error::not_supported("x").kind(),
            OutcomeKind::UnsupportedEventType
        );
        assert_eq!(
            Error::invalid_payload("x").kind(),
            OutcomeKind::MessageRejected
        );
        assert_eq!(Error::validation("x").kind(), OutcomeKind::MessageRejected);
        assert_eq!(Error::retry("x").kind(), OutcomeKind::Retry);
        assert_eq!(Error::drop_event("x").kind(), OutcomeKind::Dropped);
        assert_eq!(Error::other("x").kind(), OutcomeKind::BadRequest);
    }

    #[test]
    fn std_errors_become_bad_requests() {
        fn parse() -> Result<u32, Error> {
            Ok("nope".parse::<u32>()?)
        }
        let err = parse().unwrap_err();
        assert_eq!(err.kind(), OutcomeKind::BadRequest);
        assert!(err.message().contains("invalid digit"), "{err}");
    }

    #[test]
    fn is_a_standard_error() {
        let boxed: Box<dyn std::error::Error> = Box::new(Error::retry("later"));
        assert_eq!(boxed.to_string(), "RetryError: later");
    }

    #[test]
    fn options_and_results_convert_to_the_named_class() {
        let none: Option<u8> = None;
        assert_eq!(
            none.or_invalid_payload("no name").unwrap_err(),
            Error::invalid_payload("no name")
        );
        assert_eq!(Some(1).or_validation("unused"), Ok(1));
        let failed = "x".parse::<u8>().or_retry("partner id");
        let error = failed.unwrap_err();
        assert_eq!(error.kind(), OutcomeKind::Retry);
        assert!(
            error.message().starts_with("partner id: invalid digit"),
            "{error}"
        );
    }
}
