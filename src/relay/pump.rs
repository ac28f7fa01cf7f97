//! One direction of a tunnel: reads its sender, feeds the tracker, writes validated runs to the
//! receiver with one write each, and writes control frames asked for by the other pump between frames.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::buffer::ReadBuffer;
use super::control::ControlFrame;
use super::io::{TunnelRead, TunnelWrite};
use super::mailbox::{Mail, Mailbox};
use super::shared::{other, Closer, Shared};
use crate::metrics::{DirectionMetrics, RouteMetrics};
use crate::proto::close::code_label;
use crate::proto::frame::{control_payload, parse_header, OpCode};
use crate::proto::tracker::{Limits, Sender, Step, Tracker};

pub(super) struct Pump<'a, R, W> {
    sender: Sender,
    src: R,
    dst: W,
    tracker: Tracker,
    buf: ReadBuffer,
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
}

impl<'a, R: TunnelRead, W: TunnelWrite> Pump<'a, R, W> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        sender: Sender,
        src: R,
        prefix: Bytes,
        dst: W,
        limits: Limits,
        write_timeout: Duration,
        route: &'a RouteMetrics,
        shared: &'a Shared,
    ) -> Self {
        Pump {
            sender,
            src,
            dst,
            tracker: Tracker::new(sender, limits),
            buf: ReadBuffer::with_prefix(&prefix),
            inbox: shared.toward(other(sender)),
            inbox_closed: false,
            outbox: shared.toward(sender),
            route,
            counters: route.direction(sender),
            shared,
            src_done: false,
            dst_done: false,
            write_timeout,
        }
    }

    pub(super) async fn run(mut self) {
        if self.buf.filled() > 0 {
            self.process().await;
        }
        loop {
            let inject_ready =
                self.tracker.at_frame_boundary() && !self.dst_done && !self.inbox_closed;
            tokio::select! {
                biased;
                mail = self.inbox.take(), if inject_ready => match mail {
                    // The other pump ended: nobody will ask us to write any more. (Without this
                    // flag a closed inbox would win every biased select and starve the read.)
                    Mail::Gone if self.src_done => return,
                    Mail::Gone => self.inbox_closed = true,
                    mail => self.write_mail(mail).await,
                },
                read = self.src.read_into(&mut self.buf), if !self.src_done => match read {
                    Ok(0) | Err(_) => self.on_src_end().await,
                    Ok(_) => self.process().await,
                },
                else => return,
            }
            if self.src_done && self.dst_done {
                return;
            }
        }
    }

    /// Walks the buffered bytes frame by frame; consecutive valid bytes go out in one write.
    async fn process(&mut self) {
        let whole_limit = self.buf.capacity();
        let filled = self.buf.filled();
        let mut pos = 0;
        let mut run = 0;
        let mut data = false;
        let (mut frames, mut bytes) = (0u64, 0u64);
        while !self.dst_done && pos < filled {
            match self
                .tracker
                .step(&mut self.buf.data_mut()[pos..], whole_limit)
            {
                Step::NeedMore => break,
                Step::Forward { len, done } => {
                    // Only data frames stream in pieces; control frames come whole with `done`.
                    data |= done.is_none_or(|d| !d.opcode.is_control());
                    if let Some(done) = done {
                        frames += 1;
                        bytes += done.payload_len;
                        self.counters.frame(done.opcode, done.payload_len);
                        if let Some(kind) = done.message_end {
                            self.counters.message(kind);
                        }
                        if done.opcode == OpCode::Pong && self.is_own_pong(pos, len) {
                            // It answers wsgate's keepalive ping: not relayed.
                            self.flush(run, pos).await;
                            run = pos + len;
                        }
                    }
                    pos += len;
                }
                Step::AnswerPing { len, payload } => {
                    let payload = pos + payload.start..pos + payload.end;
                    frames += 1;
                    bytes += payload.len() as u64;
                    self.counters.frame(OpCode::Ping, payload.len() as u64);
                    self.counters.pings_answered.inc();
                    // A pong not yet written is replaced (RFC 6455 §5.5.3 allows answering
                    // only the latest ping).
                    self.outbox.post_pong(&self.buf.data()[payload]);
                    self.flush(run, pos).await;
                    pos += len;
                    run = pos;
                }
                Step::Close { len, code } => {
                    let header_len = parse_header(&self.buf.data()[pos..pos + len])
                        .ok()
                        .flatten()
                        .map_or(len, |(_, header_len)| header_len);
                    frames += 1;
                    bytes += (len - header_len) as u64;
                    self.counters
                        .frame(OpCode::Close, (len - header_len) as u64);
                    self.route
                        .close(self.sender, code.map_or("1005", code_label));
                    self.shared
                        .close_received(self.sender, code.unwrap_or(1005));
                    pos += len;
                    self.flush(run, pos).await;
                    run = pos;
                    if self.shared.close_forwarded(self.sender) {
                        // Both closes are through: end both TCP connections (RFC 6455 §7.1.1).
                        self.finish_dst().await;
                        self.outbox.post_fin();
                    }
                }
                Step::Discard {
                    len,
                    first_after_close,
                } => {
                    self.flush(run, pos).await;
                    pos += len;
                    run = pos;
                    if first_after_close {
                        self.route.violation(self.sender, "data_after_close");
                    }
                }
                Step::Violation {
                    violation,
                    mid_frame,
                } => {
                    self.flush(run, pos).await;
                    run = filled;
                    pos = filled;
                    self.route.violation(self.sender, violation.kind());
                    self.shared.closed_by(Closer::Wsgate);
                    tracing::debug!(route = %self.route.route, sender = ?self.sender, %violation, "protocol violation");
                    // The sender gets the RFC code, written by the other pump between frames.
                    self.outbox.post_close(violation.close_code());
                    if mid_frame {
                        self.abort_dst().await;
                    } else {
                        self.close_dst(away_code(self.sender)).await;
                    }
                }
            }
        }
        if self.dst_done {
            // Nothing more goes to the receiver: drop what is buffered.
            run = filled;
            pos = filled;
        }
        self.flush(run, pos).await;
        self.buf.consume(pos);
        self.shared.heard(self.sender, data);
        self.shared.add_traffic(self.sender, frames, bytes);
    }

    fn is_own_pong(&self, pos: usize, len: usize) -> bool {
        let mut payload = [0u8; 125];
        match control_payload(&self.buf.data()[pos..pos + len], &mut payload) {
            Some((_, n)) => self.shared.take_own_pong(self.sender, &payload[..n]),
            None => false,
        }
    }

    async fn flush(&mut self, from: usize, to: usize) {
        if from < to && !self.dst_done {
            let bytes = &self.buf.data()[from..to];
            let written = write_all(&mut self.dst, bytes, self.write_timeout).await;
            self.after_write(written).await;
        }
    }

    async fn write_mail(&mut self, mail: Mail) {
        let receiver = other(self.sender);
        let frame = match mail {
            Mail::Pong(payload) => ControlFrame::new(OpCode::Pong, payload.as_bytes(), receiver),
            Mail::Ping(token) => ControlFrame::new(OpCode::Ping, &token.to_be_bytes(), receiver),
            Mail::Close(code) => {
                self.shared.closed_by(Closer::Wsgate);
                return self.close_dst(code).await;
            }
            Mail::Fin | Mail::Gone => return self.finish_dst().await,
        };
        let written = write_all(&mut self.dst, frame.as_bytes(), self.write_timeout).await;
        self.after_write(written).await;
    }

    async fn after_write(&mut self, written: Written) {
        match written {
            Written::All => {}
            Written::Broken => {
                self.dst_done = true;
                self.shared.closing.notify_one();
            }
            Written::Stalled => {
                self.shared.closed_by(Closer::Wsgate);
                // The receiver stopped reading: cut it, and tell our sender it went away.
                tracing::debug!(route = %self.route.route, receiver = ?other(self.sender), "write_timeout");
                self.abort_dst().await;
                self.outbox.post_close(away_code(other(self.sender)));
            }
        }
    }

    /// The sender closed its TCP connection (or it broke).
    async fn on_src_end(&mut self) {
        self.src_done = true;
        self.shared.closing.notify_one();
        if self.tracker.is_closed_or_failed() {
            // Its close frame (or our answer to its violation) already went out: pass the FIN on.
            self.finish_dst().await;
        } else if !self.tracker.at_frame_boundary() {
            self.abort_dst().await;
        } else {
            // Gone without a close frame: the receiver still gets a proper one.
            self.close_dst(away_code(self.sender)).await;
        }
    }

    /// Writes a close frame of wsgate's own to the receiver, then FIN.
    async fn close_dst(&mut self, code: u16) {
        if !self.dst_done {
            let frame = ControlFrame::close(code, other(self.sender));
            let _ = write_all(&mut self.dst, frame.as_bytes(), self.write_timeout).await;
        }
        self.finish_dst().await;
    }

    async fn finish_dst(&mut self) {
        if !self.dst_done {
            self.dst_done = true;
            let _ = self.dst.shutdown().await;
        }
        self.shared.closing.notify_one();
    }

    /// A rule broke after part of a frame went out: no close frame can follow, so the receiver's
    /// connection is cut (RST when the socket is dropped).
    async fn abort_dst(&mut self) {
        self.dst.reset_on_close();
        self.finish_dst().await;
        self.shared.cut.notify_one();
    }
}

impl<R, W> Drop for Pump<'_, R, W> {
    fn drop(&mut self) {
        self.outbox.hang_up();
    }
}

enum Written {
    All,
    /// The connection failed.
    Broken,
    /// Nothing could be written for `write_timeout`.
    Stalled,
}

/// Writes all of `bytes`. The timer is armed only when the socket buffer is full, so the common
/// case costs one non-blocking write and no timer.
async fn write_all(dst: &mut impl TunnelWrite, bytes: &[u8], timeout: Duration) -> Written {
    let done = match dst.try_write_now(bytes) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(_) => return Written::Broken,
    };
    if done == bytes.len() {
        return Written::All;
    }
    match tokio::time::timeout(timeout, dst.write_all(&bytes[done..])).await {
        Ok(Ok(())) => Written::All,
        Ok(Err(_)) => Written::Broken,
        Err(_) => Written::Stalled,
    }
}

/// The code the receiver gets when its peer misbehaved or vanished: 1001 "going away" toward the
/// upstream when the client did, 1014 "bad gateway" toward the client when the upstream did.
fn away_code(sender: Sender) -> u16 {
    match sender {
        Sender::Client => 1001,
        Sender::Upstream => 1014,
    }
}
