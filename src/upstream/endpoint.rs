//! One endpoint's health and load: consecutive connect failures and the ejection they cause (passive
//! health, as nginx's max_fails/fail_timeout), the active check's verdict, and open tunnels. Atomics
//! only, and the metrics gauges that mirror them.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus::IntGauge;
use tokio::time::Instant;

use super::balance::stable_hash;

pub struct Endpoint {
    pub addr: Arc<str>,
    pub id: u64,
    epoch: Instant,
    fails: AtomicU32,
    /// Milliseconds since `epoch` until which the endpoint sits out (0: not ejected).
    ejected_until: AtomicU64,
    /// The active health check's last verdict.
    check_down: AtomicBool,
    tunnels: AtomicUsize,
    up: IntGauge,
    tunnels_gauge: IntGauge,
}

impl Endpoint {
    pub fn new(addr: &str, up: IntGauge, tunnels_gauge: IntGauge) -> Self {
        up.set(1);
        Endpoint {
            addr: addr.into(),
            id: stable_hash(addr),
            epoch: Instant::now(),
            fails: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            check_down: AtomicBool::new(false),
            tunnels: AtomicUsize::new(0),
            up,
            tunnels_gauge,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Neither ejected nor failed by the active check.
    pub fn eligible(&self) -> bool {
        let ok = !self.check_down.load(Ordering::Relaxed)
            && self.now_ms() >= self.ejected_until.load(Ordering::Relaxed);
        // An ejection ends by time alone: reflect it in the gauge lazily, here.
        if ok && self.up.get() == 0 {
            self.up.set(1);
        }
        ok
    }

    pub fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::Relaxed)
    }

    /// A failed connect; `max_fails` in a row eject the endpoint for `fail_timeout` (0: never).
    pub fn connect_failed(&self, max_fails: u32, fail_timeout: Duration) {
        let fails = self.fails.fetch_add(1, Ordering::Relaxed) + 1;
        if max_fails > 0 && fails >= max_fails {
            self.fails.store(0, Ordering::Relaxed);
            let until = self.now_ms() + fail_timeout.as_millis() as u64;
            self.ejected_until.store(until, Ordering::Relaxed);
            self.up.set(0);
            tracing::warn!(endpoint = %self.addr, ?fail_timeout, "endpoint ejected after {fails} failed connects");
        }
    }

    pub fn connect_succeeded(&self) {
        self.fails.store(0, Ordering::Relaxed);
    }

    /// The active health check's verdict; true when it differs from the last one (the caller logs
    /// the change with its reason).
    pub fn set_checked(&self, healthy: bool) -> bool {
        let was_down = self.check_down.swap(!healthy, Ordering::Relaxed);
        if healthy {
            self.fails.store(0, Ordering::Relaxed);
            self.ejected_until.store(0, Ordering::Relaxed);
        }
        self.up.set(i64::from(healthy));
        was_down == healthy
    }

    /// Counts a tunnel on this endpoint until the guard is dropped.
    pub fn tunnel(self: &Arc<Self>) -> TunnelGuard {
        self.tunnels.fetch_add(1, Ordering::Relaxed);
        self.tunnels_gauge.inc();
        TunnelGuard(self.clone())
    }
}

pub struct TunnelGuard(Arc<Endpoint>);

impl Drop for TunnelGuard {
    fn drop(&mut self) {
        self.0.tunnels.fetch_sub(1, Ordering::Relaxed);
        self.0.tunnels_gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Arc<Endpoint> {
        Arc::new(Endpoint::new(
            "10.0.0.1:80",
            IntGauge::new("up", "h").unwrap(),
            IntGauge::new("t", "h").unwrap(),
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn ejected_after_max_fails_until_fail_timeout() {
        let e = endpoint();
        e.connect_failed(2, Duration::from_secs(10));
        assert!(e.eligible());
        e.connect_failed(2, Duration::from_secs(10));
        assert!(!e.eligible());
        assert_eq!(e.up.get(), 0);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(e.eligible());
        assert_eq!(e.up.get(), 1);
        // A success resets the count.
        e.connect_failed(2, Duration::from_secs(10));
        e.connect_succeeded();
        e.connect_failed(2, Duration::from_secs(10));
        assert!(e.eligible());
        // max_fails 0: never ejected.
        for _ in 0..10 {
            e.connect_failed(0, Duration::from_secs(10));
        }
        assert!(e.eligible());
    }

    #[test]
    fn health_check_and_tunnel_count() {
        let e = endpoint();
        assert!(e.set_checked(false), "up to down is a change");
        assert!(!e.set_checked(false));
        assert!(!e.eligible());
        assert!(e.set_checked(true));
        assert!(e.eligible());
        let a = e.tunnel();
        let b = e.tunnel();
        assert_eq!((e.tunnels(), e.tunnels_gauge.get()), (2, 2));
        drop((a, b));
        assert_eq!((e.tunnels(), e.tunnels_gauge.get()), (0, 0));
    }
}
