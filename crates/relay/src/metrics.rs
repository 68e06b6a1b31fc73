//! A tiny Prometheus text exposition of aggregate counters (no per-user labels).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! metrics {
    ($($name:ident: $kind:literal, $help:literal;)*) => {
        /// Process-wide counters and gauges.
        #[derive(Debug, Default)]
        pub(crate) struct Metrics {
            $(pub(crate) $name: AtomicU64,)*
        }

        impl Metrics {
            /// Renders the Prometheus text format.
            pub(crate) fn render(&self) -> String {
                let mut out = String::new();
                $(
                    let _ = writeln!(out, "# HELP sotto_relay_{} {}", stringify!($name), $help);
                    let _ = writeln!(out, "# TYPE sotto_relay_{} {}", stringify!($name), $kind);
                    let _ = writeln!(
                        out,
                        "sotto_relay_{} {}",
                        stringify!($name),
                        self.$name.load(Ordering::Relaxed)
                    );
                )*
                out
            }
        }
    };
}

metrics! {
    connections_open: "gauge", "WebSocket connections currently open.";
    connections_total: "counter", "WebSocket connections accepted.";
    connections_rejected_total: "counter", "Connections refused by connection limits.";
    authenticated_open: "gauge", "Authenticated connections currently open.";
    auth_failures_total: "counter", "Failed authentication attempts.";
    frames_in_total: "counter", "Frames received.";
    frames_malformed_total: "counter", "Frames that failed to decode.";
    rate_limited_total: "counter", "Requests refused by rate limits.";
    envelopes_accepted_total: "counter", "Envelopes accepted into mailboxes.";
    envelopes_pushed_total: "counter", "Envelope pushes sent (including redeliveries).";
    envelopes_acked_total: "counter", "Envelopes deleted on acknowledgement.";
    envelopes_expired_total: "counter", "Envelopes deleted after their TTL.";
    bundles_fetched_total: "counter", "Prekey bundles handed out.";
    storage_errors_total: "counter", "Storage operations that failed.";
    accounts_deleted_total: "counter", "Accounts deleted at their own request.";
}

impl Metrics {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn dec(counter: &AtomicU64) {
        counter.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        Metrics::inc(&m.frames_in_total);
        let text = m.render();
        assert!(text.contains("# TYPE sotto_relay_frames_in_total counter\n"));
        assert!(text.contains("\nsotto_relay_frames_in_total 1\n"));
    }
}
