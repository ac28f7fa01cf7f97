//! What the rest of a tunnel asks a pump to write toward its receiver, between frames: pongs, a
//! keepalive ping, a close of wsgate's own, a FIN. Slots and one small queue: every answered ping
//! gets its own pong, in order, up to a bound; nothing may follow a close, so a few atomics and one
//! waker say the rest, and a tunnel holds no channel.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};

use super::control::CloseReason;
use atomic_waker::AtomicWaker;
use wsgate_proto::close::CloseCode;

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
    /// A close frame with this code and reason, then FIN.
    Close(u16, CloseReason),
    /// A pong echoing the oldest ping not yet answered.
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

/// Pongs owed at most, and their payload bytes at most: past either, the oldest is dropped (RFC 6455
/// §5.5.3 lets an endpoint answer only the latest ping), so a client that pings without reading
/// cannot make wsgate buffer without bound.
pub(super) const MAX_PENDING_PONGS: usize = 16;
pub(super) const MAX_PENDING_PONG_BYTES: usize = 1024;

/// Pong payloads owed, oldest first, each as a length byte and its bytes. Its buffer grows to the
/// largest burst seen (at most the bounds above) and is reused, so a ping costs no allocation once
/// the tunnel has seen one like it.
#[derive(Default)]
struct Pongs {
    bytes: VecDeque<u8>,
    count: usize,
    payload_bytes: usize,
}

impl Pongs {
    /// Queues a payload; returns how many older pongs were dropped to make room.
    fn push(&mut self, payload: &[u8]) -> u64 {
        let mut dropped = 0;
        while self.count == MAX_PENDING_PONGS
            || self.payload_bytes + payload.len() > MAX_PENDING_PONG_BYTES
        {
            self.pop();
            dropped += 1;
        }
        self.bytes.push_back(payload.len() as u8);
        self.bytes.extend(payload);
        self.count += 1;
        self.payload_bytes += payload.len();
        dropped
    }

    fn pop(&mut self) -> Option<PingPayload> {
        let len = usize::from(self.bytes.pop_front()?);
        let mut pong = PingPayload {
            bytes: [0; 125],
            len: len as u8,
        };
        for (slot, byte) in pong.bytes.iter_mut().zip(self.bytes.drain(..len)) {
            *slot = byte;
        }
        self.count -= 1;
        self.payload_bytes -= len;
        Some(pong)
    }
}

pub(super) struct Mailbox {
    flags: AtomicU8,
    /// Locked once per answered ping and once per pong written, never per data frame; its buffer
    /// is allocated at the first ping.
    pongs: Mutex<Pongs>,
    ping_token: AtomicU64,
    /// The close asked for: its code, and its reason above bit 16 (0: none yet).
    close_code: AtomicU32,
    waker: AtomicWaker,
}

impl Mailbox {
    pub(super) fn new() -> Self {
        Mailbox {
            flags: AtomicU8::new(0),
            pongs: Mutex::new(Pongs::default()),
            ping_token: AtomicU64::new(0),
            close_code: AtomicU32::new(0),
            waker: AtomicWaker::new(),
        }
    }

    /// A pong for this ping payload, after those not yet written; returns how many of those were
    /// dropped to stay within the bounds.
    pub(super) fn post_pong(&self, payload: &[u8]) -> u64 {
        let payload = &payload[..payload.len().min(125)];
        let dropped = self
            .pongs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(payload);
        self.raise(PONG);
        dropped
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

    /// A close frame of wsgate's own, then FIN; the first code asked for wins. Takes the pump's
    /// plain codes and named ones alike.
    pub(super) fn post_close(&self, code: impl Into<CloseCode>) {
        self.post_close_because(code, CloseReason::None);
    }

    /// A close with a reason text; the first close asked for wins, with its reason.
    pub(super) fn post_close_because(&self, code: impl Into<CloseCode>, reason: CloseReason) {
        let code = u32::from(code.into().as_u16()) | (u32::from(reason as u8) << 16);
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
            CLOSE => {
                let close = self.close_code.load(Ordering::Acquire);
                Mail::Close(close as u16, CloseReason::from_u8((close >> 16) as u8))
            }
            PONG => {
                let mut pongs = self.pongs.lock().unwrap_or_else(|e| e.into_inner());
                let Some(pong) = pongs.pop() else {
                    // Taken with the one before: look again.
                    drop(pongs);
                    return self.take_now();
                };
                if pongs.count > 0 {
                    self.flags.fetch_or(PONG, Ordering::AcqRel);
                }
                Mail::Pong(pong)
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

    fn pong(mailbox: &Mailbox) -> Option<Vec<u8>> {
        match next(mailbox) {
            Some(Mail::Pong(payload)) => Some(payload.as_bytes().to_vec()),
            _ => None,
        }
    }

    #[test]
    fn every_pong_in_order() {
        let mailbox = Mailbox::new();
        for i in 0..10 {
            assert_eq!(mailbox.post_pong(format!("payload-{i}").as_bytes()), 0);
        }
        for i in 0..10 {
            assert_eq!(pong(&mailbox), Some(format!("payload-{i}").into_bytes()));
        }
        assert_eq!(next(&mailbox), None);
    }

    #[test]
    fn past_the_count_bound_the_oldest_are_dropped() {
        let mailbox = Mailbox::new();
        let posted = MAX_PENDING_PONGS + 5;
        let dropped: u64 = (0..posted).map(|i| mailbox.post_pong(&[i as u8])).sum();
        assert_eq!(dropped, 5);
        for i in 5..posted {
            assert_eq!(pong(&mailbox), Some(vec![i as u8]));
        }
        assert_eq!(next(&mailbox), None);
    }

    #[test]
    fn past_the_byte_bound_the_oldest_are_dropped() {
        let mailbox = Mailbox::new();
        // Eight 125-byte payloads are 1,000 bytes; a ninth would pass 1,024.
        let mut dropped = 0;
        for i in 0..17 {
            dropped += mailbox.post_pong(&[i; 125]);
        }
        assert_eq!(dropped, 9);
        let mut got = Vec::new();
        while let Some(p) = pong(&mailbox) {
            assert_eq!(p.len(), 125);
            got.push(p[0]);
        }
        assert_eq!(got, (9..17).collect::<Vec<u8>>());
    }

    #[test]
    fn a_pong_posted_while_taking_is_not_lost() {
        let mailbox = Mailbox::new();
        mailbox.post_pong(b"a");
        assert_eq!(pong(&mailbox), Some(b"a".to_vec()));
        mailbox.post_pong(b"b");
        mailbox.post_pong(b"c");
        assert_eq!(pong(&mailbox), Some(b"b".to_vec()));
        assert_eq!(pong(&mailbox), Some(b"c".to_vec()));
        assert_eq!(next(&mailbox), None);
    }

    #[test]
    fn fin_then_close_then_pong_and_the_first_close_code_wins() {
        let mailbox = Mailbox::new();
        mailbox.post_pong(b"");
        mailbox.post_close(CloseCode::PROTOCOL_ERROR);
        mailbox.post_close(CloseCode::GOING_AWAY);
        assert_eq!(
            next(&mailbox),
            Some(Mail::Close(
                CloseCode::PROTOCOL_ERROR.as_u16(),
                CloseReason::None
            ))
        );
        mailbox.post_fin();
        assert_eq!(next(&mailbox), Some(Mail::Fin));
        assert!(matches!(next(&mailbox), Some(Mail::Pong(_))));
    }

    #[test]
    fn gone_once_everything_posted_is_taken() {
        let mailbox = Mailbox::new();
        mailbox.post_close(CloseCode::GOING_AWAY);
        mailbox.hang_up();
        assert!(!mailbox.post_ping(1));
        assert_eq!(
            next(&mailbox),
            Some(Mail::Close(
                CloseCode::GOING_AWAY.as_u16(),
                CloseReason::None
            ))
        );
        assert_eq!(next(&mailbox), Some(Mail::Gone));
        assert_eq!(next(&mailbox), Some(Mail::Gone));
    }
}
