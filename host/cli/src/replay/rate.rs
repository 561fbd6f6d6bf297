//! `--rate`: a token bucket shared by every invocation (retries included, since each
//! one reaches the partner too), so the partner sees at most `rate` requests per second
//! on average, whatever `--concurrency` is.
//!
//! The bucket holds up to [`BURST`] worth of tokens (50 ms of the rate, at least one),
//! which lets the sender catch up after a scheduler delay without bursting at the
//! partner. Taking a token may put the bucket in debt: the taker is told how long to
//! wait, and the next taker waits behind it. So waiters are served in order and the
//! long-run rate is exact, with no polling. The arithmetic takes the time as an
//! argument, so it is tested without clocks; [`RateLimiter`] applies it with tokio's.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How much of the rate the bucket can hold: a burst of at most this much time's worth.
pub const BURST: Duration = Duration::from_millis(50);

/// The bucket's arithmetic.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `rate` tokens per second (`rate > 0`), as of `now`.
    pub fn new(rate: f64, now: Instant) -> TokenBucket {
        let capacity = (rate * BURST.as_secs_f64()).max(1.0);
        TokenBucket {
            rate,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    /// Takes one token at `now`; how long to wait before using it (zero when one was
    /// there).
    pub fn take(&mut self, now: Instant) -> Duration {
        // Time never runs backwards here: a taker that read the clock before another
        // one took the lock counts as arriving at the same time.
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            // A rate so small that the wait overflows a Duration waits "forever".
            Duration::try_from_secs_f64(-self.tokens / self.rate).unwrap_or(Duration::MAX)
        }
    }
}

/// The bucket behind a lock, or nothing without `--rate`.
#[derive(Debug)]
pub struct RateLimiter {
    bucket: Option<Mutex<TokenBucket>>,
}

impl RateLimiter {
    /// A limiter for `rate` per second; `None` or a rate that is not positive and finite
    /// means no limit.
    pub fn new(rate: Option<f64>) -> RateLimiter {
        RateLimiter {
            bucket: rate
                .filter(|r| r.is_finite() && *r > 0.0)
                .map(|r| Mutex::new(TokenBucket::new(r, Instant::now()))),
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        let Some(bucket) = &self.bucket else {
            return;
        };
        let wait = bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_full_bucket_then_one_token_per_interval() {
        let t0 = Instant::now();
        // 10/s: capacity max(1, 0.5) = 1 token, one every 100 ms.
        let mut b = TokenBucket::new(10.0, t0);
        assert_eq!(b.take(t0), Duration::ZERO);
        assert_eq!(b.take(t0), 100 * MS);
        // The next taker queues behind the first.
        assert_eq!(b.take(t0), 200 * MS);
        // A second later the debt of 2 is paid and one token (the cap) is left... then
        // used at once, so the next waits a full interval.
        let t1 = t0 + 1000 * MS;
        assert_eq!(b.take(t1), Duration::ZERO);
        let wait = b.take(t1);
        assert!(wait > 99 * MS && wait <= 100 * MS, "{wait:?}");
    }

    #[test]
    fn idle_time_buys_at_most_the_burst() {
        let t0 = Instant::now();
        // 1000/s: 50 tokens of burst.
        let mut b = TokenBucket::new(1000.0, t0);
        let t = t0 + Duration::from_secs(60);
        let free = (0..200).take_while(|_| b.take(t).is_zero()).count();
        assert_eq!(free, 50);
    }

    #[test]
    fn the_long_run_rate_is_exact() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(250.0, t0);
        // 1000 takers at t0: the last one waits (1000 - burst of 12.5 → 12) / 250 s.
        let mut last = Duration::ZERO;
        for _ in 0..1000 {
            last = b.take(t0);
        }
        let expected = (1000.0 - 12.5) / 250.0;
        assert!(
            (last.as_secs_f64() - expected).abs() < 1e-6,
            "{last:?} vs {expected}"
        );
    }

    #[test]
    fn a_late_reading_of_the_clock_does_not_refund_tokens() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, t0 + 500 * MS);
        // `now` before the bucket's last time counts as the same time.
        assert_eq!(b.take(t0), Duration::ZERO);
        assert_eq!(b.take(t0), 100 * MS);
    }

    #[tokio::test]
    async fn no_rate_means_no_waiting() {
        for rate in [None, Some(0.0), Some(-1.0), Some(f64::NAN)] {
            let limiter = RateLimiter::new(rate);
            assert!(limiter.bucket.is_none());
            limiter.acquire().await;
        }
    }
}
