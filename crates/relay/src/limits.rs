//! Rate limits (governor) and connection limits.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Config;

/// Who a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum LimitKey {
    /// A client address.
    Ip(IpAddr),
    /// An authenticated identity.
    Account([u8; 32]),
}

/// What is being limited.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Action {
    Send,
    Bundle,
    Lookup,
    Pin,
    Auth,
}

/// All keyed limiters.
pub(crate) struct Limits {
    send: DefaultKeyedRateLimiter<LimitKey>,
    bundle: DefaultKeyedRateLimiter<LimitKey>,
    lookup: DefaultKeyedRateLimiter<LimitKey>,
    pin: DefaultKeyedRateLimiter<LimitKey>,
    auth: DefaultKeyedRateLimiter<LimitKey>,
    /// Per-connection frame quota (each connection builds a direct limiter from it).
    pub(crate) frame_quota: Quota,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limits")
    }
}

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

impl Limits {
    pub(crate) fn new(c: &Config) -> Self {
        Self {
            send: RateLimiter::keyed(Quota::per_minute(nz(c.send_per_minute))),
            bundle: RateLimiter::keyed(Quota::per_minute(nz(c.bundle_per_minute))),
            lookup: RateLimiter::keyed(Quota::per_minute(nz(c.lookup_per_minute))),
            pin: RateLimiter::keyed(Quota::per_hour(nz(c.pin_per_hour))),
            auth: RateLimiter::keyed(Quota::per_minute(nz(c.auth_per_minute))),
            frame_quota: Quota::per_second(nz(c.frames_per_second)),
        }
    }

    /// Checks every key; returns the wait if any is over its quota.
    pub(crate) fn check(&self, action: Action, keys: &[LimitKey]) -> Result<(), Duration> {
        let limiter = match action {
            Action::Send => &self.send,
            Action::Bundle => &self.bundle,
            Action::Lookup => &self.lookup,
            Action::Pin => &self.pin,
            Action::Auth => &self.auth,
        };
        for key in keys {
            if let Err(not_until) = limiter.check_key(key) {
                return Err(not_until.wait_time_from(DefaultClock::default().now()));
            }
        }
        Ok(())
    }

    /// Forgets keys whose buckets are full again (bounded memory).
    pub(crate) fn shrink(&self) {
        for l in [
            &self.send,
            &self.bundle,
            &self.lookup,
            &self.pin,
            &self.auth,
        ] {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// Counts open connections, globally and per IP.
#[derive(Debug)]
pub(crate) struct ConnLimiter {
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_total: usize,
    max_per_ip: usize,
}

/// Releases a connection slot when dropped.
#[derive(Debug)]
pub(crate) struct ConnPermit {
    limiter: std::sync::Arc<ConnLimiter>,
    ip: IpAddr,
}

impl ConnLimiter {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self {
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            max_total,
            max_per_ip,
        }
    }

    pub(crate) fn try_acquire(self: &std::sync::Arc<Self>, ip: IpAddr) -> Option<ConnPermit> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip || self.total.load(Ordering::Relaxed) >= self.max_total {
            if *n == 0 {
                per_ip.remove(&ip);
            }
            return None;
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(ConnPermit {
            limiter: self.clone(),
            ip,
        })
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut per_ip = self
            .limiter
            .per_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
        self.limiter.total.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn connection_limits_release_on_drop() {
        let l = Arc::new(ConnLimiter::new(3, 2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = l.try_acquire(a).unwrap();
        let _p2 = l.try_acquire(a).unwrap();
        assert!(l.try_acquire(a).is_none());
        let _p3 = l.try_acquire(b).unwrap();
        assert!(l.try_acquire(b).is_none(), "global cap");
        drop(p1);
        assert!(l.try_acquire(a).is_some());
    }
}
