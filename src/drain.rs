//! Graceful shutdown: the drain plan that every tunnel and HTTP connection watches, and the count of
//! live connections that tells when the process may exit.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use wsgate_proto::close::CloseCode;

/// Share of the drain window over which tunnel closes are spread; the rest is left for the close
/// handshakes to finish before the deadline.
pub const SPREAD_SHARE: f64 = 0.8;

#[derive(Debug, Clone, Copy)]
pub struct DrainPlan {
    pub started: Instant,
    /// Each tunnel gets its close at a random moment in `started .. started + spread`.
    pub spread: Duration,
    /// The code clients get: 1001 "going away" or 1012 "service restart".
    pub close_code: CloseCode,
}

/// What a connection watches to learn that draining has begun.
#[derive(Clone)]
pub struct DrainSignal(watch::Receiver<Option<DrainPlan>>);

impl DrainSignal {
    pub fn channel() -> (watch::Sender<Option<DrainPlan>>, DrainSignal) {
        let (tx, rx) = watch::channel(None);
        (tx, DrainSignal(rx))
    }

    pub fn is_draining(&self) -> bool {
        self.0.borrow().is_some()
    }

    /// Resolves with the plan once draining has begun (never, if the sender is gone first).
    pub async fn started(&mut self) -> DrainPlan {
        loop {
            if let Some(plan) = *self.0.borrow_and_update() {
                return plan;
            }
            if self.0.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

/// Live connections (HTTP and tunnels); draining ends when it reaches zero.
#[derive(Default)]
pub struct Live {
    count: AtomicUsize,
    idle: Notify,
    /// Set when a drain ends: what is still open is dropped by wsgate, not left by its client.
    abandoned: AtomicBool,
}

pub struct LiveGuard(Arc<Live>);

impl Live {
    pub fn enter(self: &Arc<Self>) -> LiveGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        LiveGuard(self.clone())
    }

    /// Enters only while fewer than `max` are live (atomic check and count).
    pub fn try_enter(self: &Arc<Self>, max: usize) -> Option<LiveGuard> {
        self.count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| LiveGuard(self.clone()))
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// The drain is over: connections still open are about to be dropped with the process.
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::SeqCst);
    }

    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }

    /// Resolves when no connection is left.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_after_the_last_guard() {
        let live = Arc::new(Live::default());
        live.idle().await;
        let a = live.enter();
        let b = live.enter();
        assert_eq!(live.count(), 2);
        let waiter = tokio::spawn({
            let live = live.clone();
            async move { live.idle().await }
        });
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(b);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn try_enter_respects_the_cap() {
        let live = Arc::new(Live::default());
        let a = live.try_enter(2).unwrap();
        let _b = live.try_enter(2).unwrap();
        assert!(live.try_enter(2).is_none());
        drop(a);
        assert!(live.try_enter(2).is_some());
    }

    #[tokio::test]
    async fn signal_starts_once_planned() {
        let (tx, mut signal) = DrainSignal::channel();
        assert!(!signal.is_draining());
        let plan = DrainPlan {
            started: Instant::now(),
            spread: Duration::from_secs(1),
            close_code: CloseCode::RESTART,
        };
        tx.send(Some(plan)).unwrap();
        assert!(signal.is_draining());
        assert_eq!(signal.started().await.close_code, CloseCode::RESTART);
    }
}
