//! The errors a handler returns, named as Segment names them, and the outcome each means.

use crate::abi::OutcomeKind;
use std::fmt;

/// What a handler can fail with. The first five are Segment's error classes; `Other` is
/// any other error, which Segment reports as a bad request.
///
/// Any `std::error::Error` converts into `Other` with `?`. A [`crate::FetchError`]
/// converts by its kind: a timeout or network failure becomes `RetryError` (Segment
/// retries timeouts too), anything else `Other`.
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

/// `?` on any standard error gives a bad request carrying the error and its causes.
impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Error {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Error::Other(message)
    }
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
}
