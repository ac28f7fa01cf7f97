//! One direction of a tunnel: reads its sender, feeds the tracker, writes validated runs to the
//! receiver with one write each, and writes control frames asked for through its mailbox between
//! frames. It owns no stream: the tunnel lends it its sender and receiver at each poll.
//!
//! A hand-written state machine rather than an `async fn`: an idle tunnel is two of these plus a
//! few timers (about 4 KiB of RSS in all: README "Performance"); written by hand, its size is the
//! fields below and nothing more.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Sleep;

use super::buffer::ReadBuffer;
use super::control::{CloseReason, ControlFrame};
use super::io::Leg;
use super::mailbox::{Mail, Mailbox};
use super::rate::RateGate;
use super::shared::{other, Closer, Shared};
use crate::metrics::{DirectionMetrics, RouteMetrics};
use wsgate_proto::close::CloseCode;
use wsgate_proto::frame::OpCode;
use wsgate_proto::tracker::{Limits, Sender, Tracker};

#[path = "pump_walk.rs"]
mod walk;

/// Reads one poll may do before yielding: a sender that never runs dry must not starve the other
/// direction, which is polled by the same task.
const READS_PER_POLL: u32 = 16;

pub(super) struct Pump<'a> {
    sender: Sender,
    tracker: Tracker,
    buf: ReadBuffer,
    /// Bytes of `buf` to write to `dst` before anything else happens.
    out: Range<usize>,
    /// Bytes of `buf` the tracker has walked; dropped once `out` is written.
    walked: usize,
    /// What follows once `out` is written.
    then: Then,
    /// The walk stopped before the end of the buffered bytes (at a close frame).
    unwalked: bool,
    /// A control frame of wsgate's own being written (while `pending`), after `out`; boxed, as
    /// most tunnels never write one until their end, and kept once allocated, so a burst of pongs
    /// reuses it.
    control: Option<Box<Control>>,
    /// Armed while a write waits on a full socket; kept for reuse.
    stall: Option<Pin<Box<Sleep>>>,
    stalled: bool,
    /// `dst` must still be shut down.
    shutdown_pending: bool,
    /// What the rest of the tunnel asks us to write to `dst`.
    inbox: &'a Mailbox,
    inbox_closed: bool,
    /// What we ask the other pump to write to our sender.
    outbox: &'a Mailbox,
    route: &'a RouteMetrics,
    counters: &'a DirectionMetrics,
    shared: &'a Shared,
    src_done: bool,
    /// Nothing more may be written to `dst` (a close of ours, a FIN, or a failed write).
    dst_done: bool,
    write_timeout: Duration,
    /// `websocket.rate_limit` of this sender; `None` on unlimited routes.
    rate: Option<Box<RateGate>>,
    /// Part of the current data frame went out already (it is streamed in pieces).
    streaming: bool,
}

/// What happens once the bytes walked so far are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Continue,
    /// The sender's close frame went out.
    CloseForwarded,
    /// The sender broke a rule; `mid_frame` when part of the bad frame went out.
    Violation {
        mid_frame: bool,
    },
    /// The sender went over its rate limit (`action: close`).
    OverLimit,
}

struct Control {
    frame: ControlFrame,
    pending: bool,
    written: usize,
    /// A close frame: the receiver's connection is shut down after it.
    then_finish: bool,
}

impl Control {
    fn unwritten(&self) -> &[u8] {
        &self.frame.as_bytes()[self.written..]
    }
}

/// Where the bytes of a write come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// `out`: the validated run in the read buffer.
    Out,
    /// `control`: a frame of wsgate's own.
    Control,
}

enum Written {
    All,
    /// The connection failed.
    Broken,
    /// Nothing could be written for `write_timeout`.
    Stalled,
}

impl<'a> Pump<'a> {
    pub(super) fn new(
        sender: Sender,
        prefix: Bytes,
        limits: Limits,
        write_timeout: Duration,
        route: &'a RouteMetrics,
        shared: &'a Shared,
        rate: Option<Box<RateGate>>,
    ) -> Self {
        let mut pump = Pump {
            sender,
            tracker: Tracker::new(sender, limits),
            buf: ReadBuffer::with_prefix(&prefix),
            out: 0..0,
            walked: 0,
            then: Then::Continue,
            unwalked: false,
            control: None,
            stall: None,
            stalled: false,
            shutdown_pending: false,
            inbox: shared.toward(other(sender)),
            inbox_closed: false,
            outbox: shared.toward(sender),
            route,
            counters: route.direction(sender),
            shared,
            src_done: false,
            dst_done: false,
            write_timeout,
            rate,
            streaming: false,
        };
        if pump.buf.filled() > 0 {
            pump.walk();
        }
        pump
    }

    /// Runs until the sender (`src`) is done and nothing more can be written to the receiver
    /// (`dst`).
    pub(super) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut impl Leg,
        dst: &mut impl Leg,
    ) -> Poll<()> {
        let mut reads = 0;
        loop {
            // Everything the last walk let through goes out before anything else happens: no
            // read meanwhile, so a receiver that does not read stops its sender (backpressure).
            if !self.out.is_empty() {
                let written = ready!(self.poll_write_from(cx, dst, Source::Out));
                self.after_write(dst, written);
            }
            if self.walked > 0 {
                self.buf.consume(self.walked);
                self.walked = 0;
            }
            match std::mem::replace(&mut self.then, Then::Continue) {
                Then::Continue => {}
                Then::CloseForwarded => {
                    if self.shared.close_forwarded(self.sender) {
                        // Both closes are through: end both TCP connections (RFC 6455 §7.1.1).
                        self.finish_dst();
                        self.outbox.post_fin();
                    }
                }
                Then::Violation { mid_frame: true } => self.abort_dst(dst),
                Then::Violation { mid_frame: false } => self.close_dst(away_code(self.sender)),
                Then::OverLimit => self.close_dst(CloseCode::GOING_AWAY.as_u16()),
            }
            if self.control.as_ref().is_some_and(|c| c.pending) {
                let written = ready!(self.poll_write_from(cx, dst, Source::Control));
                let then_finish = self.control.as_mut().is_some_and(|c| {
                    c.pending = false;
                    c.then_finish
                });
                self.after_write(dst, written);
                if then_finish {
                    self.finish_dst();
                }
            }
            if self.shutdown_pending {
                let _ = ready!(Pin::new(&mut *dst).poll_shutdown(cx));
                self.shutdown_pending = false;
            }
            if !self.dst_done && dst.holds_written() {
                // Nothing else would send what `dst` kept back before we wait for more.
                let flushed = ready!(self.poll_flush_dst(cx, dst));
                self.after_write(dst, flushed);
            }
            if self.unwalked {
                self.walk();
                continue;
            }
            let inject_ready =
                self.tracker.at_frame_boundary() && !self.dst_done && !self.inbox_closed;
            if inject_ready {
                if let Poll::Ready(mail) = self.inbox.poll_take(cx) {
                    match mail {
                        // The other pump ended: nobody will ask us to write any more.
                        Mail::Gone if self.src_done => return Poll::Ready(()),
                        Mail::Gone => self.inbox_closed = true,
                        mail => self.take_mail(mail),
                    }
                    continue;
                }
            }
            let shared = self.shared;
            // A throttled sender is not read until its buckets refill: TCP slows it down.
            let may_read = !self.src_done
                && self
                    .rate
                    .as_deref_mut()
                    .is_none_or(|gate| gate.poll_resume(cx, shared).is_ready());
            if may_read {
                if let Poll::Ready(read) = src.poll_read_into(cx, &mut self.buf) {
                    match read {
                        Ok(0) | Err(_) => self.on_src_end(dst),
                        Ok(_) => self.walk(),
                    }
                    reads += 1;
                    if reads == READS_PER_POLL {
                        // Let the other direction and other tunnels run.
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    continue;
                }
            }
            if self.src_done && (self.dst_done || self.inbox_closed) {
                return Poll::Ready(());
            }
            return Poll::Pending;
        }
    }

    /// The receiver was shut down (or broke): nothing more goes to it, its FIN included.
    pub(super) fn dst_finished(&self) -> bool {
        self.dst_done && !self.shutdown_pending
    }

    fn take_mail(&mut self, mail: Mail) {
        let receiver = other(self.sender);
        let frame = match mail {
            Mail::Pong(payload) => ControlFrame::new(OpCode::Pong, payload.as_bytes(), receiver),
            Mail::Ping(token) => ControlFrame::new(OpCode::Ping, &token.to_be_bytes(), receiver),
            Mail::Close(code, reason) => {
                self.shared.closed_by(Closer::Wsgate);
                return self.close_dst_because(code, reason);
            }
            Mail::Fin | Mail::Gone => return self.finish_dst(),
        };
        self.set_control(frame, false);
    }

    /// Queues a control frame of our own after `out`; `then_finish`: shut `dst` down after it.
    fn set_control(&mut self, frame: ControlFrame, then_finish: bool) {
        let control = Control {
            frame,
            pending: true,
            written: 0,
            then_finish,
        };
        match self.control.as_mut() {
            Some(slot) => **slot = control,
            None => self.control = Some(Box::new(control)),
        }
    }

    /// Writes what is pending from `from` until all of it is out, the socket is full, or the
    /// receiver is done; the one write path for forwarded runs and wsgate's own frames alike.
    fn poll_write_from(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut impl Leg,
        from: Source,
    ) -> Poll<Written> {
        let result = loop {
            let bytes = match from {
                Source::Out => &self.buf.data()[self.out.clone()],
                Source::Control => self.control.as_deref().map_or(&[][..], Control::unwritten),
            };
            if bytes.is_empty() || self.dst_done {
                break Written::All;
            }
            let timeout = self.write_timeout;
            let stall = (&mut self.stall, &mut self.stalled);
            match ready!(poll_write(dst, cx, bytes, stall, timeout)) {
                Ok(n) => match from {
                    Source::Out => self.out.start += n,
                    Source::Control => self.control.as_deref_mut().map_or((), |c| c.written += n),
                },
                Err(written) => break written,
            }
        };
        if from == Source::Out {
            self.out = 0..0;
        }
        Poll::Ready(result)
    }

    /// Flushes `dst`, under the same write timeout as a write.
    fn poll_flush_dst(&mut self, cx: &mut Context<'_>, dst: &mut impl Leg) -> Poll<Written> {
        let stall = (&mut self.stall, &mut self.stalled);
        let flushed = Pin::new(dst).poll_flush(cx);
        Poll::Ready(
            match ready!(watch_stall(flushed, cx, stall, self.write_timeout)) {
                Ok(()) => Written::All,
                Err(written) => written,
            },
        )
    }

    fn after_write(&mut self, dst: &mut impl Leg, written: Written) {
        match written {
            Written::All => {}
            Written::Broken => {
                self.dst_done = true;
                self.shared.start_closing();
            }
            Written::Stalled => {
                self.shared.closed_by(Closer::Wsgate);
                // The receiver stopped reading: cut it, and tell our sender it went away.
                tracing::debug!(route = %self.route.route, receiver = ?other(self.sender), "write_timeout");
                self.abort_dst(dst);
                self.outbox.post_close(away_code(other(self.sender)));
            }
        }
    }

    /// The sender closed its TCP connection (or it broke).
    fn on_src_end(&mut self, dst: &mut impl Leg) {
        self.src_done = true;
        self.shared.start_closing();
        if self.tracker.is_closed_or_failed() {
            // Its close frame (or our answer to its violation) already went out: pass the FIN on.
            self.finish_dst();
        } else if !self.tracker.at_frame_boundary() {
            self.abort_dst(dst);
        } else {
            // Gone without a close frame: the receiver still gets a proper one.
            self.close_dst(away_code(self.sender));
        }
    }

    /// Writes a close frame of wsgate's own to the receiver, then FIN.
    fn close_dst(&mut self, code: u16) {
        self.close_dst_because(code, CloseReason::None);
    }

    fn close_dst_because(&mut self, code: u16, reason: CloseReason) {
        if self.dst_done {
            return self.finish_dst();
        }
        let text = match reason {
            CloseReason::Admin => self.shared.admin_reason(),
            reason => reason.text(),
        };
        self.set_control(ControlFrame::close(code, text, other(self.sender)), true);
    }

    fn finish_dst(&mut self) {
        if !self.dst_done {
            self.dst_done = true;
            self.shutdown_pending = true;
        }
        self.shared.start_closing();
    }

    /// A rule broke after part of a frame went out: no close frame can follow, so the receiver's
    /// connection is cut (RST when the socket is dropped).
    fn abort_dst(&mut self, dst: &mut impl Leg) {
        dst.reset_on_close();
        self.control = None;
        self.finish_dst();
        self.shared.cut();
    }
}

impl Drop for Pump<'_> {
    fn drop(&mut self) {
        self.outbox.hang_up();
    }
}

/// Writes some of `bytes`. The timer is armed only when the socket buffer is full, and fires when
/// nothing more could be written for `timeout` since.
fn poll_write(
    dst: &mut impl Leg,
    cx: &mut Context<'_>,
    bytes: &[u8],
    stall: (&mut Option<Pin<Box<Sleep>>>, &mut bool),
    timeout: Duration,
) -> Poll<Result<usize, Written>> {
    let written = Pin::new(dst).poll_write(cx, bytes);
    match ready!(watch_stall(written, cx, stall, timeout)) {
        Ok(0) => Poll::Ready(Err(Written::Broken)),
        written => Poll::Ready(written),
    }
}

/// The outcome of a write or flush, with the stall timer armed while it is pending.
fn watch_stall<T>(
    polled: Poll<std::io::Result<T>>,
    cx: &mut Context<'_>,
    (stall, stalled): (&mut Option<Pin<Box<Sleep>>>, &mut bool),
    timeout: Duration,
) -> Poll<Result<T, Written>> {
    match polled {
        Poll::Ready(Err(_)) => Poll::Ready(Err(Written::Broken)),
        Poll::Ready(Ok(done)) => {
            *stalled = false;
            Poll::Ready(Ok(done))
        }
        Poll::Pending => {
            let deadline = tokio::time::Instant::now() + timeout;
            let timer = stall.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if !*stalled {
                *stalled = true;
                timer.as_mut().reset(deadline);
            }
            match timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    *stalled = false;
                    Poll::Ready(Err(Written::Stalled))
                }
                Poll::Pending => Poll::Pending,
            }
        }
    }
}

/// The code the receiver gets when its peer misbehaved or vanished: 1001 "going away" toward the
/// upstream when the client did, 1014 "bad gateway" toward the client when the upstream did.
fn away_code(sender: Sender) -> u16 {
    match sender {
        Sender::Client => CloseCode::GOING_AWAY.as_u16(),
        Sender::Upstream => CloseCode::BAD_GATEWAY.as_u16(),
    }
}
