//! What the rest of a tunnel asks a pump to write toward its receiver, between frames: a pong, a
//! keepalive ping, a close of wsgate's own, a FIN. Slots, not a queue: RFC 6455 §5.5.3 lets a pong
//! answer only the latest ping, and nothing may follow a close, so a few atomics and one waker say
//! it all, and a tunnel holds no channel.

use std::sync::atomic::{AtomicU16, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;

const PONG: u8 = 1;
const PING: u8 = 1 << 1;
const CLOSE: u8 = 1 << 2;
const FIN: u8 = 1 << 3;
/// The pump that answers pings and asks for closes has ended: nothing more will come.
const GONE: u8 = 1 << 4;

/// One item to write, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mail {
    /// The close handshake is complete: FIN, and nothing else.
    Fin,
    /// A close frame with this code, then FIN.
    Close(u16),
    /// A pong echoing the latest ping.
    Pong(PingPayload),
    /// A keepalive ping carrying this token.
    Ping(u64),
    /// The other pump has ended.
    Gone,
}

/// A ping's payload (at most 125 bytes, RFC 6455 §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PingPayload {
    bytes: [u8; 125],
    len: u8,
}

impl PingPayload {
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

pub(super) struct Mailbox {
    flags: AtomicU8,
    /// Locked once per answered ping, never per data frame; allocated at the first one.
    pong: Mutex<Option<Box<PingPayload>>>,
    ping_token: AtomicU64,
    close_code: AtomicU16,
    waker: AtomicWaker,
}

impl Mailbox {
    pub(super) fn new() -> Self {
        Mailbox {
            flags: AtomicU8::new(0),
            pong: Mutex::new(None),
            ping_token: AtomicU64::new(0),
            close_code: AtomicU16::new(0),
            waker: AtomicWaker::new(),
        }
    }

    /// A pong for this ping payload; it replaces one not yet written.
    pub(super) fn post_pong(&self, payload: &[u8]) {
        let len = payload.len().min(125);
        if let Ok(mut pong) = self.pong.lock() {
            let pong = pong.get_or_insert_with(|| {
                Box::new(PingPayload {
                    bytes: [0; 125],
                    len: 0,
                })
            });
            pong.bytes[..len].copy_from_slice(&payload[..len]);
            pong.len = len as u8;
        }
        self.raise(PONG);
    }

    /// A keepalive ping; false when the pump is gone.
    pub(super) fn post_ping(&self, token: u64) -> bool {
        if self.flags.load(Ordering::Acquire) & GONE != 0 {
            return false;
        }
        self.ping_token.store(token, Ordering::Release);
        self.raise(PING);
        true
    }

    /// A close frame of wsgate's own, then FIN; the first code asked for wins.
    pub(super) fn post_close(&self, code: u16) {
        let _ = self
            .close_code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.raise(CLOSE);
    }

    pub(super) fn post_fin(&self) {
        self.raise(FIN);
    }

    /// Says that the pump posting here has ended.
    pub(super) fn hang_up(&self) {
        self.raise(GONE);
    }

    fn raise(&self, flag: u8) {
        self.flags.fetch_or(flag, Ordering::AcqRel);
        self.waker.wake();
    }

    /// The next item, or a wakeup when one is posted. Only the pump writing toward this side
    /// calls it.
    pub(super) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Mail> {
        if let Some(mail) = self.take_now() {
            return Poll::Ready(mail);
        }
        self.waker.register(cx.waker());
        match self.take_now() {
            Some(mail) => Poll::Ready(mail),
            None => Poll::Pending,
        }
    }

    fn take_now(&self) -> Option<Mail> {
        let flags = self.flags.load(Ordering::Acquire);
        let order = [FIN, CLOSE, PONG, PING];
        let flag = order.into_iter().find(|&flag| flags & flag != 0);
        let Some(flag) = flag else {
            return (flags & GONE != 0).then_some(Mail::Gone);
        };
        self.flags.fetch_and(!flag, Ordering::AcqRel);
        Some(match flag {
            FIN => Mail::Fin,
            CLOSE => Mail::Close(self.close_code.load(Ordering::Acquire)),
            PONG => {
                let pong = self.pong.lock().unwrap_or_else(|e| e.into_inner());
                Mail::Pong(pong.as_deref().copied().unwrap_or(PingPayload {
                    bytes: [0; 125],
                    len: 0,
                }))
            }
            _ => Mail::Ping(self.ping_token.load(Ordering::Acquire)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(mailbox: &Mailbox) -> Option<Mail> {
        mailbox.take_now()
    }

    #[test]
    fn empty_until_posted() {
        let mailbox = Mailbox::new();
        assert_eq!(next(&mailbox), None);
        mailbox.post_ping(7);
        assert_eq!(next(&mailbox), Some(Mail::Ping(7)));
        assert_eq!(next(&mailbox), None);
    }

    #[test]
    fn a_later_pong_replaces_one_not_yet_written() {
        let mailbox = Mailbox::new();
        mailbox.post_pong(b"first");
        mailbox.post_pong(b"second");
        let Some(Mail::Pong(payload)) = next(&mailbox) else {
            panic!("no pong");
        };
        assert_eq!(payload.as_bytes(), b"second");
        assert_eq!(next(&mailbox), None);
    }

    #[test]
    fn fin_then_close_then_pong_and_the_first_close_code_wins() {
        let mailbox = Mailbox::new();
        mailbox.post_pong(b"");
        mailbox.post_close(1002);
        mailbox.post_close(1001);
        assert_eq!(next(&mailbox), Some(Mail::Close(1002)));
        mailbox.post_fin();
        assert_eq!(next(&mailbox), Some(Mail::Fin));
        assert!(matches!(next(&mailbox), Some(Mail::Pong(_))));
    }

    #[test]
    fn gone_once_everything_posted_is_taken() {
        let mailbox = Mailbox::new();
        mailbox.post_close(1001);
        mailbox.hang_up();
        assert!(!mailbox.post_ping(1));
        assert_eq!(next(&mailbox), Some(Mail::Close(1001)));
        assert_eq!(next(&mailbox), Some(Mail::Gone));
        assert_eq!(next(&mailbox), Some(Mail::Gone));
    }
}
