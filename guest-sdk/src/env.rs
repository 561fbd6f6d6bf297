//! Clock and randomness, which `wasm32-unknown-unknown` lacks: both come from the host.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    crate::sys::now_ms()
}

/// The current time. (`SystemTime::now()` panics on `wasm32-unknown-unknown`; use this.)
pub fn now() -> SystemTime {
    let ms = now_millis();
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// Fills `buf` with random bytes.
pub fn random_bytes(buf: &mut [u8]) {
    crate::sys::random_fill(buf);
}

/// A random `u64`.
pub fn random_u64() -> u64 {
    let mut buf = [0; 8];
    random_bytes(&mut buf);
    u64::from_le_bytes(buf)
}
