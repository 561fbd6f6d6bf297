//! Clock and randomness, which `wasm32-unknown-unknown` lacks: both come from the host.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, from the host's clock (JavaScript: `Date.now()`).
///
/// ```
/// assert!(segfn_sdk::now_millis() > 1_700_000_000_000);
/// ```
pub fn now_millis() -> i64 {
    crate::sys::now_ms()
}

/// The current time. (`SystemTime::now()` panics on `wasm32-unknown-unknown`; use this.)
///
/// ```
/// let age = segfn_sdk::now().duration_since(std::time::UNIX_EPOCH).unwrap();
/// assert!(age.as_secs() > 1_700_000_000);
/// ```
pub fn now() -> SystemTime {
    let ms = now_millis();
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// Fills `buf` with random bytes from the host (JavaScript: `crypto.randomBytes`).
///
/// ```
/// let mut nonce = [0u8; 16];
/// segfn_sdk::random_bytes(&mut nonce);
/// let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
/// assert_eq!(hex.len(), 32);
/// ```
pub fn random_bytes(buf: &mut [u8]) {
    crate::sys::random_fill(buf);
}

/// A random `u64`.
///
/// ```
/// let jitter_ms = segfn_sdk::random_u64() % 100;
/// assert!(jitter_ms < 100);
/// ```
pub fn random_u64() -> u64 {
    let mut buf = [0; 8];
    random_bytes(&mut buf);
    u64::from_le_bytes(buf)
}
