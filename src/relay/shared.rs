//! What the two pumps and the tunnel's timers share: close flags, the start of closing, when each side
//! was last heard from, and the keepalive ping each side owes an answer to. Atomics only: the pumps
//! touch them per read, so no lock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::proto::tracker::Sender;

pub(super) struct Shared {
    close_seen: [AtomicBool; 2],
    pub(super) closing: Notify,
    /// A peer's connection was cut (mid-frame violation, write timeout): the tunnel ends shortly.
    pub(super) cut: Notify,
    started: Instant,
    /// Milliseconds since `started` when each side last sent bytes.
    last_heard: [AtomicU64; 2],
    /// Milliseconds since `started` of the last data frame in either direction.
    last_data: AtomicU64,
    /// Payload of the keepalive ping each side has not answered yet (0: none).
    ping_token: [AtomicU64; 2],
}

impl Shared {
    pub(super) fn new() -> Self {
        Shared {
            close_seen: [AtomicBool::new(false), AtomicBool::new(false)],
            closing: Notify::new(),
            cut: Notify::new(),
            started: Instant::now(),
            last_heard: [AtomicU64::new(0), AtomicU64::new(0)],
            last_data: AtomicU64::new(0),
            ping_token: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// Records that `sender`'s close frame was forwarded; true when the other side's was too.
    pub(super) fn close_forwarded(&self, sender: Sender) -> bool {
        // SeqCst: when both closes cross, at least one pump must see the other's flag.
        self.close_seen[index(sender)].store(true, Ordering::SeqCst);
        self.closing.notify_one();
        self.close_seen[index(other(sender))].load(Ordering::SeqCst)
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(super) fn at_ms(&self, ms: u64) -> Instant {
        self.started + std::time::Duration::from_millis(ms)
    }

    /// `sender` sent bytes; `data` when they held data frames.
    pub(super) fn heard(&self, sender: Sender, data: bool) {
        let now = self.now_ms();
        self.last_heard[index(sender)].store(now, Ordering::Relaxed);
        if data {
            self.last_data.store(now, Ordering::Relaxed);
        }
    }

    pub(super) fn last_heard(&self, sender: Sender) -> u64 {
        self.last_heard[index(sender)].load(Ordering::Relaxed)
    }

    pub(super) fn last_data(&self) -> u64 {
        self.last_data.load(Ordering::Relaxed)
    }

    pub(super) fn set_ping_token(&self, side: Sender, token: u64) {
        self.ping_token[index(side)].store(token, Ordering::Relaxed);
    }

    /// Takes the token when `payload` answers wsgate's own ping to `sender`.
    pub(super) fn take_own_pong(&self, sender: Sender, payload: &[u8]) -> bool {
        let token = self.ping_token[index(sender)].load(Ordering::Relaxed);
        token != 0
            && payload == token.to_be_bytes()
            && self.ping_token[index(sender)]
                .compare_exchange(token, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

fn index(sender: Sender) -> usize {
    match sender {
        Sender::Client => 0,
        Sender::Upstream => 1,
    }
}

pub(crate) fn other(sender: Sender) -> Sender {
    match sender {
        Sender::Client => Sender::Upstream,
        Sender::Upstream => Sender::Client,
    }
}
