//! Logging in the spirit of `console.log`: lines the host collects into the report.

use crate::abi::LogLevel;

/// Writes one log line at a level. Prefer the macros [`crate::info!`] and friends.
#[doc(hidden)]
pub fn write(level: LogLevel, message: &str) {
    crate::sys::log(level, message);
}

/// Logs at `debug`: `segfn_sdk::debug!("x = {x}")`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::write($crate::abi::LogLevel::Debug, &::std::format!($($arg)*)) };
}

/// Logs at `info` (what `console.log` does): `segfn_sdk::info!("sent {id}")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::write($crate::abi::LogLevel::Info, &::std::format!($($arg)*)) };
}

/// Logs at `warn`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::write($crate::abi::LogLevel::Warn, &::std::format!($($arg)*)) };
}

/// Logs at `error`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::write($crate::abi::LogLevel::Error, &::std::format!($($arg)*)) };
}
