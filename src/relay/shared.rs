//! What the two pumps and the tunnel's timers share: close flags, the start of closing, when each side
//! was last heard from, and the keepalive ping each side owes an answer to. Atomics only: the pumps
//! touch them per read, so no lock.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;

use tokio::time::Instant;

use super::mailbox::Mailbox;
use super::tap::TapHub;
use wsgate_proto::tracker::Sender;

pub(crate) struct Shared {
    close_seen: [AtomicBool; 2],
    /// Closing has started: the close grace runs. (Flags, not wakeups: the pumps that raise them
    /// run in the tunnel's own task, which looks at them right after polling the pumps.)
    closing: AtomicBool,
    /// A peer's connection was cut (mid-frame violation, write timeout): the tunnel ends shortly.
    cut: AtomicBool,
    started: Instant,
    /// Milliseconds since `started` when each side last sent bytes.
    last_heard: [AtomicU64; 2],
    /// Milliseconds since `started` of the last data frame in either direction.
    last_data: AtomicU64,
    /// Payload of the keepalive ping each side has not answered yet (0: none).
    ping_token: [AtomicU64; 2],
    /// For the access log and `/tunnels`: frames, messages and payload bytes each side sent,
    /// added once per read.
    frames: [AtomicU64; 2],
    messages: [AtomicU64; 2],
    bytes: [AtomicU64; 2],
    pings_answered: AtomicU64,
    /// Close code each side sent (`NO_CODE` none yet, 1005 for an empty close).
    close_code: [AtomicU32; 2],
    first_closer: AtomicU8,
    /// What the pump writing toward each side is asked to write, by that side.
    mail: [Mailbox; 2],
    /// The reason text of a close asked for through the admin API.
    admin_reason: OnceLock<Box<str>>,
    /// The relay has ended.
    ended: AtomicBool,
    pub(super) tap: TapHub,
}

const NO_CODE: u32 = u32::MAX;

/// Who started the close, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closer {
    /// Nobody: the tunnel ended on a TCP close.
    Nobody,
    Client,
    Upstream,
    /// wsgate itself: a violation, a drain, keepalive, idle or write timeout.
    Wsgate,
}

impl Closer {
    pub fn label(self) -> &'static str {
        match self {
            Closer::Nobody => "none",
            Closer::Client => "client",
            Closer::Upstream => "upstream",
            Closer::Wsgate => "wsgate",
        }
    }
}

/// A tunnel's totals, read once at its end.
#[derive(Debug, Clone, Copy)]
pub struct TunnelStats {
    pub frames: [u64; 2],
    pub bytes: [u64; 2],
    pub close_code: [Option<u32>; 2],
    pub first_closer: Closer,
}

impl Shared {
    pub(super) fn new() -> Self {
        Shared {
            close_seen: [AtomicBool::new(false), AtomicBool::new(false)],
            closing: AtomicBool::new(false),
            cut: AtomicBool::new(false),
            started: Instant::now(),
            last_heard: [AtomicU64::new(0), AtomicU64::new(0)],
            last_data: AtomicU64::new(0),
            ping_token: [AtomicU64::new(0), AtomicU64::new(0)],
            frames: [AtomicU64::new(0), AtomicU64::new(0)],
            messages: [AtomicU64::new(0), AtomicU64::new(0)],
            bytes: [AtomicU64::new(0), AtomicU64::new(0)],
            pings_answered: AtomicU64::new(0),
            close_code: [AtomicU32::new(NO_CODE), AtomicU32::new(NO_CODE)],
            first_closer: AtomicU8::new(0),
            mail: [Mailbox::new(), Mailbox::new()],
            admin_reason: OnceLock::new(),
            ended: AtomicBool::new(false),
            tap: TapHub::default(),
        }
    }

    pub(super) fn add_traffic(&self, sender: Sender, frames: u64, messages: u64, bytes: u64) {
        if frames > 0 {
            let i = index(sender);
            self.frames[i].fetch_add(frames, Ordering::Relaxed);
            self.bytes[i].fetch_add(bytes, Ordering::Relaxed);
            if messages > 0 {
                self.messages[i].fetch_add(messages, Ordering::Relaxed);
            }
        }
    }

    /// Frames, messages and payload bytes `sender` sent so far.
    pub(super) fn traffic(&self, sender: Sender) -> (u64, u64, u64) {
        let i = index(sender);
        (
            self.frames[i].load(Ordering::Relaxed),
            self.messages[i].load(Ordering::Relaxed),
            self.bytes[i].load(Ordering::Relaxed),
        )
    }

    pub(super) fn ping_answered(&self) {
        self.pings_answered.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn pings_answered(&self) -> u64 {
        self.pings_answered.load(Ordering::Relaxed)
    }

    /// Keeps the first reason asked for, as the mailboxes keep the first close.
    pub(super) fn set_admin_reason(&self, reason: &str) {
        let _ = self.admin_reason.set(reason.into());
    }

    pub(super) fn admin_close_asked(&self) -> bool {
        self.admin_reason.get().is_some()
    }

    pub(super) fn admin_reason(&self) -> &str {
        self.admin_reason.get().map_or("", |r| r)
    }

    pub(super) fn set_ended(&self) {
        self.ended.store(true, Ordering::Release);
    }

    pub(super) fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// A close frame from `sender` passed; the first close of the tunnel names its closer.
    pub(super) fn close_received(&self, sender: Sender, code: u16) {
        self.close_code[index(sender)].store(u32::from(code), Ordering::Relaxed);
        self.closed_by(match sender {
            Sender::Client => Closer::Client,
            Sender::Upstream => Closer::Upstream,
        });
    }

    pub(super) fn closed_by(&self, closer: Closer) {
        let value = match closer {
            Closer::Nobody => return,
            Closer::Client => 1,
            Closer::Upstream => 2,
            Closer::Wsgate => 3,
        };
        let _ = self
            .first_closer
            .compare_exchange(0, value, Ordering::Relaxed, Ordering::Relaxed);
    }

    pub(super) fn stats(&self) -> TunnelStats {
        let code = |i: usize| {
            let c = self.close_code[i].load(Ordering::Relaxed);
            (c != NO_CODE).then_some(c)
        };
        TunnelStats {
            frames: [0, 1].map(|i| self.frames[i].load(Ordering::Relaxed)),
            bytes: [0, 1].map(|i| self.bytes[i].load(Ordering::Relaxed)),
            close_code: [code(0), code(1)],
            first_closer: match self.first_closer.load(Ordering::Relaxed) {
                1 => Closer::Client,
                2 => Closer::Upstream,
                3 => Closer::Wsgate,
                _ => Closer::Nobody,
            },
        }
    }

    /// Records that `sender`'s close frame was forwarded; true when the other side's was too.
    pub(super) fn close_forwarded(&self, sender: Sender) -> bool {
        // SeqCst: when both closes cross, at least one pump must see the other's flag.
        self.close_seen[index(sender)].store(true, Ordering::SeqCst);
        self.start_closing();
        self.close_seen[index(other(sender))].load(Ordering::SeqCst)
    }

    /// Both sides' close frames were forwarded: the close handshake is complete.
    pub(super) fn closes_done(&self) -> bool {
        self.close_seen
            .iter()
            .all(|seen| seen.load(Ordering::SeqCst))
    }

    pub(super) fn start_closing(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    pub(super) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    pub(super) fn cut(&self) {
        self.cut.store(true, Ordering::Relaxed);
    }

    pub(super) fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Relaxed)
    }

    /// The mailbox of the pump that writes toward `side`.
    pub(super) fn toward(&self, side: Sender) -> &Mailbox {
        &self.mail[index(side)]
    }

    /// Since the tunnel started, to the clock's precision.
    pub(super) fn age(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(super) fn at_ms(&self, ms: u64) -> Instant {
        self.started + std::time::Duration::from_millis(ms)
    }

    /// `sender` sent bytes at `now` (from `now_ms`); `data` when they held data frames.
    pub(super) fn heard(&self, sender: Sender, data: bool, now: u64) {
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
