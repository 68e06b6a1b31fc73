//! The Sotto relay: the only server in Sotto. It authenticates accounts by their identity keys,
//! keeps the username directory with registration lock, hands out prekeys, and queues sealed
//! envelopes per recipient device until they are acknowledged.
#![forbid(unsafe_code)]

pub mod config;
mod hub;
mod limits;
mod metrics;
pub mod server;
pub mod storage;
mod tls;

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
