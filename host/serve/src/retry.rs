//! The durable mode's retry policy: which attempts are retried ([`classify`], one
//! function for every outcome and partner status) and when ([`Backoff`], randomised
//! exponential within a window).
//!
//! How an outcome and the request trace combine (docs/ARCHITECTURE.md, decision 7):
//! - `retry` (RetryError, deadline, host fault) is retried, whatever the trace says.
//! - `success` and `dropped` are final: the function handled the event, even if some
//!   partner call on the way failed (it may have been optional).
//! - Every other outcome (message rejected, bad request, unsupported, invalid
//!   settings) is final, unless the partner's *last* answer says "try later": no
//!   response (timeout or network error, not a refusal by the allow-list), or 408,
//!   423, 429, or 5xx other than 501. A function that turns a partner's 503 into a
//!   generic error is then still retried, as Segment would retry the partner itself;
//!   a 400, 401, 403 or 422 from the partner never is.

use segfn_engine::fetch::TraceEntry;
use segfn_engine::outcome::OutcomeKind;
use serde::Deserialize;
use std::time::Duration;

/// Whether an attempt is retried, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Final: the event leaves the queue.
    Final,
    /// Worth another attempt, for this reason.
    Retry(String),
}

/// Whether a partner's status asks for a retry: 408, 423, 429, and 5xx except 501.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 423 | 429) || ((500..600).contains(&status) && status != 501)
}

/// Decides on one attempt: its outcome kind and the invocation's request trace.
pub fn classify(outcome: OutcomeKind, trace: &[TraceEntry]) -> Verdict {
    match outcome {
        OutcomeKind::Retry => return Verdict::Retry("the function asked for a retry".into()),
        OutcomeKind::Success | OutcomeKind::Dropped => return Verdict::Final,
        _ => {}
    }
    let Some(last) = trace.last() else {
        return Verdict::Final;
    };
    match (last.status, last.error.as_deref()) {
        (Some(status), _) if retryable_status(status) => {
            Verdict::Retry(format!("the partner answered {status}"))
        }
        (None, Some(error)) if error.starts_with("timeout") || error.starts_with("network") => {
            Verdict::Retry(format!("the partner did not answer ({error})"))
        }
        _ => Verdict::Final,
    }
}

/// `[server.retry]`: how often and how long failed events are retried.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retries after the first attempt (Segment: 9).
    pub retries: u32,
    /// Delay before the first retry, in ms.
    pub base_ms: u64,
    /// Each retry waits this many times longer than the one before.
    pub factor: f64,
    /// Longest delay between two attempts, in ms.
    pub cap_ms: u64,
    /// No retry is scheduled later than this after the event arrived, in seconds.
    pub window_secs: u64,
}

impl Default for RetryConfig {
    /// 9 retries over about 4 hours: delays of 1, 2, 4, ... minutes, capped at an
    /// hour (1+2+4+8+16+32+60+60+60 = 243 minutes before jitter).
    fn default() -> Self {
        RetryConfig {
            retries: 9,
            base_ms: 60_000,
            factor: 2.0,
            cap_ms: 3_600_000,
            window_secs: 4 * 3600,
        }
    }
}

/// The schedule of retries.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    config: RetryConfig,
}

/// When to try again, or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// At this time (ms since the epoch).
    At(u64),
    /// Retries exhausted, or the window is over: dead-letter it.
    GiveUp,
}

impl Backoff {
    /// The schedule for `config`.
    pub fn new(config: RetryConfig) -> Backoff {
        Backoff { config }
    }

    /// The delay before retry number `retry` (0 for the first) before jitter:
    /// `base × factor^retry`, at most `cap`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let c = &self.config;
        let exp = c.factor.max(1.0).powi(retry.min(64) as i32);
        let ms = (c.base_ms as f64 * exp).min(c.cap_ms as f64);
        Duration::from_millis(ms.max(0.0) as u64)
    }

    /// The delay before retry `retry` for a `jitter` in `[0, 1)`: uniformly between
    /// half the ceiling and the ceiling ("equal jitter"), so retries of events that
    /// failed together spread out but never come much sooner than planned.
    pub fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let ceiling = self.ceiling(retry).as_millis() as f64;
        let jitter = jitter.clamp(0.0, 1.0);
        Duration::from_millis((ceiling / 2.0 + ceiling / 2.0 * jitter) as u64)
    }

    /// After a failed attempt at `now_ms`, with `attempts` made so far (this one
    /// included) and the window started at `window_start_ms`: when to try again.
    /// A retry that would fall after the window is moved to its end; once the window
    /// is over, or the retries are spent, the event is given up.
    pub fn next(&self, attempts: u32, window_start_ms: u64, now_ms: u64, jitter: f64) -> Next {
        let retries_done = attempts.saturating_sub(1);
        if retries_done >= self.config.retries {
            return Next::GiveUp;
        }
        let window_end = window_start_ms.saturating_add(self.config.window_secs * 1000);
        if now_ms >= window_end {
            return Next::GiveUp;
        }
        let at = now_ms.saturating_add(self.delay(retries_done, jitter).as_millis() as u64);
        Next::At(at.min(window_end))
    }
}

/// A jitter in `[0, 1)` from the operating system's generator.
pub fn random_jitter() -> f64 {
    let mut bytes = [0u8; 8];
    // Without randomness the retries are merely less spread out.
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> TraceEntry {
        TraceEntry {
            method: "POST".into(),
            url: "https://api.partner.example/v1/track".into(),
            sent_to: None,
            status: Some(status),
            duration_ms: 1.0,
            request_bytes: 0,
            response_bytes: 0,
            error: None,
            request_headers: None,
            request_body: None,
            response_body: None,
        }
    }

    fn failed(error: &str) -> TraceEntry {
        TraceEntry {
            status: None,
            error: Some(error.into()),
            ..answered(0)
        }
    }

    const ALL: [OutcomeKind; 7] = [
        OutcomeKind::Success,
        OutcomeKind::Dropped,
        OutcomeKind::Retry,
        OutcomeKind::UnsupportedEventType,
        OutcomeKind::MessageRejected,
        OutcomeKind::BadRequest,
        OutcomeKind::InvalidSettings,
    ];

    #[test]
    fn every_outcome_without_a_trace() {
        for kind in ALL {
            let retried = matches!(classify(kind, &[]), Verdict::Retry(_));
            assert_eq!(retried, kind == OutcomeKind::Retry, "{kind:?}");
        }
    }

    #[test]
    fn every_status_class_from_the_partner() {
        let retried: Vec<u16> = (100..600)
            .filter(|&s| {
                matches!(
                    classify(OutcomeKind::MessageRejected, &[answered(s)]),
                    Verdict::Retry(_)
                )
            })
            .collect();
        let mut expected = vec![408, 423, 429];
        expected.extend((500..600).filter(|&s| s != 501));
        assert_eq!(retried, expected);
        for never in [400, 401, 403, 404, 422, 501, 200, 301] {
            assert!(!retryable_status(never), "{never}");
        }
    }

    #[test]
    fn outcomes_and_the_trace_combine() {
        let busy = [answered(503)];
        let rejected = [answered(400)];
        // Retry whatever the partner said; success and dropped are final even after a 503.
        for trace in [&busy[..], &rejected[..], &[]] {
            assert!(matches!(
                classify(OutcomeKind::Retry, trace),
                Verdict::Retry(_)
            ));
            assert_eq!(classify(OutcomeKind::Success, trace), Verdict::Final);
            assert_eq!(classify(OutcomeKind::Dropped, trace), Verdict::Final);
        }
        // A failure after a retryable answer is retried; after a refusal it is final.
        for kind in [
            OutcomeKind::MessageRejected,
            OutcomeKind::BadRequest,
            OutcomeKind::UnsupportedEventType,
            OutcomeKind::InvalidSettings,
        ] {
            assert!(
                matches!(classify(kind, &busy), Verdict::Retry(_)),
                "{kind:?}"
            );
            assert_eq!(classify(kind, &rejected), Verdict::Final, "{kind:?}");
        }
        // Only the last answer counts.
        assert_eq!(
            classify(OutcomeKind::BadRequest, &[answered(503), answered(422)]),
            Verdict::Final
        );
        assert!(matches!(
            classify(OutcomeKind::BadRequest, &[answered(200), answered(429)]),
            Verdict::Retry(_)
        ));
        // No answer: timeouts and network errors are retried, refusals and limits not.
        for error in [
            "timeout: no response within 5s",
            "network: connection refused",
        ] {
            assert!(matches!(
                classify(OutcomeKind::BadRequest, &[failed(error)]),
                Verdict::Retry(_)
            ));
        }
        for error in [
            "denied: not on the allow-list",
            "limit: 10 fetches",
            "invalid: bad URL",
        ] {
            assert_eq!(
                classify(OutcomeKind::BadRequest, &[failed(error)]),
                Verdict::Final
            );
        }
    }

    #[test]
    fn delays_grow_within_their_bounds_and_stop_at_the_cap() {
        let b = Backoff::new(RetryConfig::default());
        let mut previous = Duration::ZERO;
        for retry in 0..12 {
            let ceiling = b.ceiling(retry);
            assert!(ceiling >= previous && ceiling <= Duration::from_secs(3600));
            previous = ceiling;
            let low = b.delay(retry, 0.0);
            let high = b.delay(retry, 0.999_999);
            assert_eq!(low, ceiling / 2);
            assert!(high <= ceiling && high >= ceiling.mul_f64(0.99));
            for j in [0.1, 0.5, 0.9] {
                let d = b.delay(retry, j);
                assert!(d >= low && d <= high);
            }
        }
        assert_eq!(b.ceiling(0), Duration::from_secs(60));
        assert_eq!(b.ceiling(3), Duration::from_secs(480));
        assert_eq!(b.ceiling(9), Duration::from_secs(3600));
    }

    #[test]
    fn nine_retries_spread_over_the_window_then_give_up() {
        let b = Backoff::new(RetryConfig::default());
        for jitter in [0.0, 0.5, 0.999] {
            let start = 1_000_000;
            let mut now = start;
            let mut retries = 0;
            for attempts in 1.. {
                match b.next(attempts, start, now, jitter) {
                    Next::At(at) => {
                        assert!(at > now && at <= start + 4 * 3600 * 1000);
                        now = at;
                        retries += 1;
                    }
                    Next::GiveUp => break,
                }
            }
            assert_eq!(retries, 9, "jitter {jitter}");
            // Half the ceilings at least: 2 h; at most the window.
            assert!(now - start >= 2 * 3600 * 1000 - 30_000, "{}", now - start);
        }
    }

    #[test]
    fn the_window_bounds_the_schedule() {
        let b = Backoff::new(RetryConfig {
            retries: 100,
            base_ms: 1000,
            factor: 10.0,
            cap_ms: 1_000_000,
            window_secs: 60,
        });
        assert_eq!(
            b.next(3, 0, 50_000, 0.5),
            Next::At(60_000),
            "moved to the window's end"
        );
        assert_eq!(b.next(4, 0, 60_000, 0.5), Next::GiveUp);
        let none = Backoff::new(RetryConfig {
            retries: 0,
            ..RetryConfig::default()
        });
        assert_eq!(
            none.next(1, 0, 0, 0.5),
            Next::GiveUp,
            "no retries configured"
        );
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..100 {
            let j = random_jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
