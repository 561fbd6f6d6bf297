//! Per-invocation limits with their defaults, and the memory limiter that enforces the
//! memory cap and records peak use.

use serde::Serialize;
use std::time::Duration;

/// The limits of one invocation. Every limit has a default and trips with an outcome
/// that names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Wall-clock deadline, including time spent waiting on `fetch` (Segment: 5 s).
    pub deadline: Duration,
    /// Largest linear memory the guest may grow to, in bytes.
    pub memory_bytes: usize,
    /// Instruction cap (fuel); `None` counts without a cap.
    pub instructions: Option<u64>,
    /// Largest result the guest may return, in bytes.
    pub output_bytes: usize,
    /// Total bytes of log lines kept; later lines are dropped and the drop noted.
    pub log_bytes: usize,
    /// Number of `fetch` calls per invocation.
    pub fetches: u32,
    /// Largest request body a guest may send, in bytes.
    pub request_body_bytes: usize,
    /// Largest response body a guest may receive, in bytes.
    pub response_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(5),
            memory_bytes: 128 << 20,
            instructions: None,
            output_bytes: 4 << 20,
            log_bytes: 16 << 10,
            fetches: 100,
            request_body_bytes: 4 << 20,
            response_body_bytes: 1 << 20,
        }
    }
}

/// Formats a byte count the way limits are written: `128 MiB`, `16 KiB`, `100 B`.
pub fn bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

/// Enforces the memory cap and remembers the peak and whether the cap was hit, so a
/// failed allocation can be reported as the limit it was.
#[derive(Debug)]
pub struct MemoryLimiter {
    max: usize,
    /// Largest memory size granted, in bytes.
    pub peak: usize,
    /// Set when the guest asked for more than `max`.
    pub exceeded: bool,
}

/// Table elements a guest may have (function tables; generous for real programs).
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl MemoryLimiter {
    /// A limiter with a cap in bytes.
    pub fn new(max: usize) -> Self {
        MemoryLimiter {
            max,
            peak: 0,
            exceeded: false,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.exceeded = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    // One module, one instance: nothing a guest does needs more.
    fn instances(&self) -> usize {
        1
    }
    fn tables(&self) -> usize {
        4
    }
    fn memories(&self) -> usize {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn limiter_records_peak_and_refuses_beyond_cap() {
        let mut l = MemoryLimiter::new(1 << 20);
        assert!(l.memory_growing(0, 65536, None).unwrap());
        assert!(!l.memory_growing(65536, (1 << 20) + 1, None).unwrap());
        assert_eq!(l.peak, 65536);
        assert!(l.exceeded);
    }

    #[test]
    fn byte_formatting() {
        assert_eq!(bytes(128 << 20), "128 MiB");
        assert_eq!(bytes(16 << 10), "16 KiB");
        assert_eq!(bytes(1000), "1000 B");
    }
}
