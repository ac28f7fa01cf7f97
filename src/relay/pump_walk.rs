//! The walk of a pump's read buffer, frame by frame: what the tracker lets through is gathered for
//! one write, pings are answered, closes and violations decide what follows, the rate gate is
//! charged per data frame, and what was counted is added to the metrics once per walk.

use std::ops::Range;

use super::{Pump, Then};
use crate::metrics::FrameTally;
use crate::relay::control::CloseReason;
use crate::relay::rate::Allowance;
use crate::relay::shared::Closer;
use wsgate_proto::close::{code_label, CloseCode};
use wsgate_proto::frame::{control_payload, parse_header, OpCode};
use wsgate_proto::tracker::{FrameDone, Step};
use wsgate_proto::violation::{Violation, DATA_AFTER_CLOSE};

/// Where one walk is in the buffer, and what it counted (added to the metrics once, at its end).
struct Walk {
    pos: usize,
    /// End of the output gathered so far.
    out: usize,
    /// A data frame (or part of one) passed.
    data: bool,
    frames: u64,
    messages: u64,
    bytes: u64,
    tally: FrameTally,
    /// The clock reading of this walk's read, in the tunnel's milliseconds.
    now: u64,
}

impl Walk {
    fn count(&mut self, opcode: OpCode, payload_len: u64) {
        self.frames += 1;
        self.bytes += payload_len;
        self.tally.frame(opcode, payload_len);
    }
}

impl Pump<'_> {
    /// Walks the buffered bytes frame by frame. What passes is gathered at the front of the
    /// buffer as `out` (moved only when a frame in between is dropped), for one write.
    pub(super) fn walk(&mut self) {
        self.unwalked = false;
        let whole_limit = self.buf.capacity();
        let filled = self.buf.filled();
        let now = self.shared.now_ms();
        if let Some(gate) = self.rate.as_deref_mut() {
            gate.refill(now);
        }
        let mut w = Walk {
            now,
            pos: self.walked,
            out: self.out.end,
            data: false,
            frames: 0,
            messages: 0,
            bytes: 0,
            tally: FrameTally::default(),
        };
        // One relaxed load per read: all that taps cost a tunnel that has none.
        let tapped = self.shared.tap.is_attached();
        while w.pos < filled && self.then == Then::Continue {
            if self.dst_done && self.tracker.is_closed_or_failed() {
                break;
            }
            // Taken before the step, which may unmask or re-mask the bytes in place.
            let tap = (tapped && self.tracker.at_frame_boundary())
                .then(|| {
                    let bytes = &self.buf.data()[w.pos..filled];
                    self.shared.tap.peek(self.sender, bytes, w.now)
                })
                .flatten();
            let step = self
                .tracker
                .step(&mut self.buf.data_mut()[w.pos..], whole_limit);
            if let Some(frame) = tap.filter(|_| !matches!(step, Step::NeedMore)) {
                self.shared.tap.send(frame);
            }
            if self.dst_done {
                // Nothing more goes to the receiver, but the sender's close still answers the one
                // wsgate sent it (an admin close or a route's end write to both sides): seeing it
                // completes the handshake, so wsgate closes TCP first instead of waiting out the
                // close grace for a client that waits for it (RFC 6455 §7.1.1).
                match step {
                    Step::Close { len, code } => self.close_frame(&mut w, len, code),
                    Step::Forward { len, .. }
                    | Step::AnswerPing { len, .. }
                    | Step::Discard { len, .. } => w.pos += len,
                    Step::NeedMore | Step::Violation { .. } => break,
                }
                continue;
            }
            match step {
                Step::NeedMore => break,
                Step::Forward { len, done } => self.forward(&mut w, len, done),
                Step::AnswerPing { len, payload } => self.answer_ping(&mut w, len, payload),
                Step::Close { len, code } => {
                    self.close_frame(&mut w, len, code);
                    // What follows is walked (and discarded) once the close is written.
                    self.unwalked = w.pos < filled;
                }
                Step::Discard {
                    len,
                    first_after_close,
                } => {
                    w.pos += len;
                    if first_after_close {
                        self.route.violation(self.sender, DATA_AFTER_CLOSE);
                    }
                }
                Step::Violation {
                    violation,
                    mid_frame,
                } => {
                    w.pos = filled;
                    self.violation(violation, mid_frame);
                }
            }
        }
        if self.dst_done {
            // Nothing more goes to the receiver: drop what is buffered.
            w.pos = filled;
            w.out = self.out.start;
        }
        self.out.end = w.out;
        self.walked = w.pos;
        self.counters.record(&w.tally);
        self.shared.heard(self.sender, w.data, now);
        self.shared
            .add_traffic(self.sender, w.frames, w.messages, w.bytes);
    }

    /// `len` bytes passed; `done` when they end a frame.
    fn forward(&mut self, w: &mut Walk, len: usize, done: Option<FrameDone>) {
        // Only data frames stream in pieces; control frames come whole with `done`.
        w.data |= done.is_none_or(|d| !d.opcode.is_control());
        let mut keep = true;
        let whole = !std::mem::replace(&mut self.streaming, done.is_none());
        if let (Some(done), Some(gate)) = (done, self.rate.as_deref_mut()) {
            let allowance = if done.opcode.is_control() {
                Allowance::Within
            } else {
                gate.frame(done.payload_len, done.message_end.is_some(), w.now)
            };
            if allowance == Allowance::Exceeded {
                self.over_limit();
                if whole {
                    // Nothing of it went out: it is dropped, and so is what follows.
                    w.pos += len;
                    return;
                }
            }
        }
        if let Some(done) = done {
            w.count(done.opcode, done.payload_len);
            if let Some(kind) = done.message_end {
                w.tally.message(kind);
                w.messages += 1;
            }
            // A pong answering wsgate's keepalive ping is not relayed.
            keep = !(done.opcode == OpCode::Pong && self.is_own_pong(w.pos, len));
        }
        if keep {
            w.out = self.keep(w.pos, len, w.out);
        }
        w.pos += len;
    }

    /// A client ping that wsgate answers itself: its pong goes through the other pump.
    fn answer_ping(&mut self, w: &mut Walk, len: usize, payload: Range<usize>) {
        let payload = w.pos + payload.start..w.pos + payload.end;
        w.count(OpCode::Ping, payload.len() as u64);
        self.counters.pings_answered.inc();
        self.shared.ping_answered();
        // Each ping its own pong, in order; past the mailbox's bound the oldest go
        // (RFC 6455 §5.5.3 allows answering only the latest ping).
        let dropped = self.outbox.post_pong(&self.buf.data()[payload]);
        if dropped > 0 {
            self.counters.pongs_dropped.inc_by(dropped);
        }
        w.pos += len;
    }

    /// The sender's close frame: forwarded, and nothing after it.
    fn close_frame(&mut self, w: &mut Walk, len: usize, code: Option<u16>) {
        let pos = w.pos;
        let header_len = parse_header(&self.buf.data()[pos..pos + len])
            .ok()
            .flatten()
            .map_or(len, |(_, header_len)| header_len);
        w.count(OpCode::Close, (len - header_len) as u64);
        self.route
            .close(self.sender, code.map_or("1005", code_label));
        self.shared
            .close_received(self.sender, code.unwrap_or(CloseCode::NO_STATUS.as_u16()));
        w.out = self.keep(pos, len, w.out);
        w.pos += len;
        self.then = Then::CloseForwarded;
    }

    /// `action: close`: the sender gets 1008, the receiver 1001, once this frame is out.
    fn over_limit(&mut self) {
        self.shared.closed_by(Closer::Wsgate);
        tracing::debug!(route = %self.route.route, sender = ?self.sender, "rate limit exceeded");
        self.outbox
            .post_close_because(CloseCode::POLICY, CloseReason::RateLimited);
        self.then = Then::OverLimit;
    }

    fn violation(&mut self, violation: Violation, mid_frame: bool) {
        self.route.violation(self.sender, violation.kind());
        self.shared.closed_by(Closer::Wsgate);
        tracing::debug!(route = %self.route.route, sender = ?self.sender, %violation, "protocol violation");
        // The sender gets the RFC code, written by the other pump between frames.
        self.outbox.post_close(violation.close_code());
        self.then = Then::Violation { mid_frame };
    }

    /// Moves the frame at `pos` to the end of the output (a no-op unless something was dropped).
    fn keep(&mut self, pos: usize, len: usize, out: usize) -> usize {
        if pos != out {
            self.buf.data_mut().copy_within(pos..pos + len, out);
        }
        out + len
    }

    fn is_own_pong(&self, pos: usize, len: usize) -> bool {
        let mut payload = [0u8; 125];
        match control_payload(&self.buf.data()[pos..pos + len], &mut payload) {
            Some((_, n)) => self.shared.take_own_pong(self.sender, &payload[..n]),
            None => false,
        }
    }
}
