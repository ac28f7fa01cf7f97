//! The incremental, direction-aware frame validator the relay drives. It is fed the unconsumed front
//! of a read buffer and says what to do with the next bytes: forward them untouched, answer a ping,
//! pass a close, drop, or fail with a violation. It never owns or copies the buffer. No I/O.

use core::ops::Range;

use super::close::parse_close_payload;
use super::deflate::{CorruptData, Inflater};
use super::frame::{parse_header, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, RSV1};
use super::mask::apply_mask;
use super::utf8::Utf8Validator;
use super::violation::Violation;

/// Whose frames a tracker validates: client frames must be masked, upstream frames must not be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Client,
    Upstream,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_frame_size: u64,
    pub max_message_size: u64,
    pub validate_utf8: bool,
    /// Answer client pings instead of forwarding them (meaningful for `Sender::Client` only).
    pub answer_pings: bool,
    /// permessage-deflate was agreed for this sender: `Some(reset)`, where `reset` says the sender
    /// starts every message with a fresh context (`*_no_context_takeover`). RSV1 then marks the first
    /// frame of a compressed message (RFC 7692 §6); without it every RSV bit is reserved.
    pub compression: Option<bool>,
    /// Re-mask every forwarded client frame with a key from this source (RFC 6455 §10.3); `None`
    /// forwards the client's own keys. The source must be unpredictable (the relay passes a CSPRNG);
    /// it is a plain function so the core stays free of I/O and of any RNG crate.
    pub remask: Option<fn() -> [u8; 4]>,
}

/// A frame that passed every rule, reported once its last byte is forwarded (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDone {
    pub opcode: OpCode,
    pub payload_len: u64,
    pub fin: bool,
    /// `Some(Text | Binary)` when this frame completed a data message.
    pub message_end: Option<OpCode>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing can be decided until more bytes arrive; nothing was consumed.
    NeedMore,
    /// The first `len` bytes passed every rule and are forwarded unchanged.
    Forward { len: usize, done: Option<FrameDone> },
    /// A whole client ping of `len` bytes that wsgate answers itself; its payload, unmasked in place,
    /// is `buf[payload]`.
    AnswerPing { len: usize, payload: Range<usize> },
    /// A whole, valid close frame of `len` bytes, forwarded unchanged; everything after it is Discard.
    Close { len: usize, code: Option<u16> },
    /// Bytes after a close frame: dropped. `first_after_close` is set once per tracker.
    Discard { len: usize, first_after_close: bool },
    /// A rule broke; nothing of this step was consumed and the tracker stays failed. `mid_frame`: bytes
    /// of this frame were already forwarded, so no close frame can be written after them.
    Violation {
        violation: Violation,
        mid_frame: bool,
    },
}

#[derive(Debug)]
enum State {
    Header,
    /// Inside a frame whose header and part of whose payload were forwarded.
    Payload(Streaming),
    Closed {
        discarded: bool,
    },
    Failed {
        violation: Violation,
        mid_frame: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Streaming {
    header: FrameHeader,
    remaining: u64,
    /// Payload bytes already seen: the masking key's phase.
    offset: usize,
    inspect: Inspect,
    /// The key the forwarded payload is masked with, when it replaces `header.mask`.
    new_mask: Option<[u8; 4]>,
}

/// What the payload of a data frame needs before it may be forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inspect {
    /// Binary, or text with validate_utf8 off: the bytes are not touched.
    Nothing,
    /// Text to check as UTF-8.
    Text,
    /// A compressed message: inflated to bound its size (and to check it, when `text`).
    Inflate { text: bool },
}

pub struct Tracker {
    sender: Sender,
    limits: Limits,
    state: State,
    /// The open fragmented message's type, `None` between messages.
    message: Option<OpCode>,
    message_len: u64,
    utf8: Utf8Validator,
    /// The open message is compressed (its first frame had RSV1).
    compressed: bool,
    /// Inflated bytes of the open compressed message.
    inflated: u64,
    /// Present when permessage-deflate was agreed for this sender.
    inflater: Option<Inflater>,
}

impl Tracker {
    pub fn new(sender: Sender, limits: Limits) -> Self {
        Tracker {
            sender,
            limits,
            state: State::Header,
            message: None,
            message_len: 0,
            utf8: Utf8Validator::new(),
            compressed: false,
            inflated: 0,
            inflater: limits.compression.map(Inflater::new),
        }
    }

    /// Inspects the front of `buf`. A frame of at most `whole_limit` bytes (header and payload) is
    /// only accepted once it is entirely in `buf`, so a bad frame that arrives whole never has a byte
    /// forwarded; larger data frames stream, header and payload chunks as they arrive.
    pub fn step(&mut self, buf: &mut [u8], whole_limit: usize) -> Step {
        match &mut self.state {
            State::Failed {
                violation,
                mid_frame,
            } => Step::Violation {
                violation: *violation,
                mid_frame: *mid_frame,
            },
            State::Closed { .. } if buf.is_empty() => Step::NeedMore,
            State::Closed { discarded } => {
                let first_after_close = !*discarded;
                *discarded = true;
                Step::Discard {
                    len: buf.len(),
                    first_after_close,
                }
            }
            State::Payload(streaming) => {
                let streaming = *streaming;
                self.payload_step(buf, streaming)
            }
            State::Header => self.header_step(buf, whole_limit),
        }
    }

    /// True when no frame is partly forwarded: a frame of wsgate's own may be written here.
    pub fn at_frame_boundary(&self) -> bool {
        match self.state {
            State::Header | State::Closed { .. } => true,
            State::Payload(_) => false,
            State::Failed { mid_frame, .. } => !mid_frame,
        }
    }

    /// The sender's close frame passed, or a rule broke: nothing more is forwarded.
    pub fn is_closed_or_failed(&self) -> bool {
        matches!(self.state, State::Closed { .. } | State::Failed { .. })
    }

    fn fail(&mut self, violation: Violation, mid_frame: bool) -> Step {
        self.state = State::Failed {
            violation,
            mid_frame,
        };
        Step::Violation {
            violation,
            mid_frame,
        }
    }

    fn header_step(&mut self, buf: &mut [u8], whole_limit: usize) -> Step {
        let (header, header_len) = match parse_header(buf) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Step::NeedMore,
            Err(violation) => return self.fail(violation, false),
        };
        if let Err(violation) = self.check_header(&header) {
            return self.fail(violation, false);
        }
        let total = header_len as u64 + header.payload_len;
        if header.opcode.is_control() {
            if (buf.len() as u64) < total {
                return Step::NeedMore;
            }
            return self.control(header, header_len, &mut buf[..total as usize]);
        }
        if total <= whole_limit as u64 && (buf.len() as u64) < total {
            return Step::NeedMore;
        }

        let first = header.opcode != OpCode::Continuation;
        let compressed = if first {
            header.rsv & RSV1 != 0
        } else {
            self.compressed
        };
        let text = match header.opcode {
            OpCode::Continuation => self.message == Some(OpCode::Text),
            opcode => opcode == OpCode::Text,
        } && self.limits.validate_utf8;
        let inspect = match (compressed, text) {
            (true, text) => Inspect::Inflate { text },
            (false, true) => Inspect::Text,
            (false, false) => Inspect::Nothing,
        };
        if first {
            self.compressed = compressed;
            self.inflated = 0;
        }
        let new_mask = self.new_mask(&header);
        let mut streaming = Streaming {
            header,
            remaining: header.payload_len,
            offset: 0,
            inspect,
            new_mask,
        };
        let available = chunk_len(streaming.remaining, buf.len() - header_len);
        let chunk = header_len..header_len + available;
        if header.opcode != OpCode::Continuation {
            self.utf8.reset();
        }
        match self.consume_payload(&mut buf[chunk], &mut streaming) {
            Err(violation) => self.fail(violation, false),
            Ok(done) => {
                if header.opcode != OpCode::Continuation {
                    self.message = Some(header.opcode);
                    self.message_len = 0;
                }
                self.message_len += header.payload_len;
                if let Some(key) = new_mask {
                    set_mask_key(&mut buf[..header_len], key);
                }
                let done = done.map(|()| self.frame_done(&header));
                Step::Forward {
                    len: header_len + available,
                    done,
                }
            }
        }
    }

    fn payload_step(&mut self, buf: &mut [u8], mut streaming: Streaming) -> Step {
        if buf.is_empty() {
            return Step::NeedMore;
        }
        let available = chunk_len(streaming.remaining, buf.len());
        match self.consume_payload(&mut buf[..available], &mut streaming) {
            Err(violation) => self.fail(violation, true),
            Ok(done) => {
                let done = done.map(|()| self.frame_done(&streaming.header));
                Step::Forward {
                    len: available,
                    done,
                }
            }
        }
    }

    /// Checks a chunk of payload and advances the frame; `Ok(Some(()))` when the frame is complete.
    /// On a complete frame the state returns to `Header`, else it is `Payload`.
    fn consume_payload(
        &mut self,
        chunk: &mut [u8],
        streaming: &mut Streaming,
    ) -> Result<Option<()>, Violation> {
        let masks = Masks {
            received: streaming.header.mask,
            forwarded: streaming.new_mask.or(streaming.header.mask),
        };
        let offset = streaming.offset;
        match streaming.inspect {
            Inspect::Nothing => masks.remask(chunk, offset),
            Inspect::Text => {
                let utf8 = &mut self.utf8;
                masks.inspect(chunk, offset, |plain| {
                    utf8.feed(plain).map_err(|_| Violation::InvalidUtf8)
                })?
            }
            Inspect::Inflate { text } => self.check_compressed(chunk, masks, offset, text)?,
        }
        streaming.offset += chunk.len();
        streaming.remaining -= chunk.len() as u64;
        if streaming.remaining > 0 {
            self.state = State::Payload(*streaming);
            return Ok(None);
        }
        if streaming.header.fin {
            match streaming.inspect {
                Inspect::Nothing => {}
                Inspect::Text => self.utf8.finish().map_err(|_| Violation::InvalidUtf8)?,
                Inspect::Inflate { text } => self.finish_compressed(text)?,
            }
        }
        self.state = State::Header;
        Ok(Some(()))
    }

    /// Inflates a chunk of a compressed message (unmasked in place, masked again) into nothing but
    /// checks: its size against max_message_size (a bomb stops at the limit) and, for text, UTF-8.
    fn check_compressed(
        &mut self,
        chunk: &mut [u8],
        masks: Masks,
        offset: usize,
        text: bool,
    ) -> Result<(), Violation> {
        masks.inspect(chunk, offset, |plain| {
            self.inflate(|inflater, sink| inflater.feed(plain, sink), text)
        })
    }

    /// The compressed message ended: §7.2.2's tail, then the UTF-8 end check.
    fn finish_compressed(&mut self, text: bool) -> Result<(), Violation> {
        self.inflate(|inflater, sink| inflater.finish_message(sink), text)?;
        if text {
            self.utf8.finish().map_err(|_| Violation::InvalidUtf8)?;
        }
        Ok(())
    }

    fn inflate(
        &mut self,
        run: impl FnOnce(&mut Inflater, &mut dyn FnMut(&[u8]) -> bool) -> Result<(), CorruptData>,
        text: bool,
    ) -> Result<(), Violation> {
        let Tracker {
            inflater,
            utf8,
            inflated,
            limits,
            ..
        } = self;
        let inflater = inflater.as_mut().ok_or(Violation::ReservedBits)?;
        let mut failure = None;
        let mut sink = |out: &[u8]| {
            *inflated += out.len() as u64;
            if *inflated > limits.max_message_size {
                failure = Some(Violation::MessageTooBig);
            } else if text && utf8.feed(out).is_err() {
                failure = Some(Violation::InvalidUtf8);
            }
            failure.is_none()
        };
        run(inflater, &mut sink).map_err(|_| Violation::BadCompression)?;
        failure.map_or(Ok(()), Err)
    }

    fn frame_done(&mut self, header: &FrameHeader) -> FrameDone {
        let message_end = if header.fin {
            self.message.take()
        } else {
            None
        };
        FrameDone {
            opcode: header.opcode,
            payload_len: header.payload_len,
            fin: header.fin,
            message_end,
        }
    }

    /// The rules a header alone decides (RFC 6455 §5.1-§5.5), before any payload byte.
    fn check_header(&self, header: &FrameHeader) -> Result<(), Violation> {
        match (self.sender, header.mask.is_some()) {
            (Sender::Client, false) => return Err(Violation::UnmaskedFrame),
            (Sender::Upstream, true) => return Err(Violation::MaskedFrame),
            _ => {}
        }
        // RSV1 only marks the first frame of a compressed data message (RFC 7692 §6.1); RSV2 and
        // RSV3 are never in use.
        let rsv1_ok = self.limits.compression.is_some()
            && matches!(header.opcode, OpCode::Text | OpCode::Binary);
        if header.rsv & !RSV1 != 0 || (header.rsv & RSV1 != 0 && !rsv1_ok) {
            return Err(Violation::ReservedBits);
        }
        if header.opcode.is_control() {
            if header.payload_len > MAX_CONTROL_PAYLOAD {
                return Err(Violation::ControlTooLong);
            }
            if !header.fin {
                return Err(Violation::FragmentedControl);
            }
            return Ok(());
        }
        let message_len = match (header.opcode, self.message) {
            (OpCode::Continuation, None) => return Err(Violation::BadContinuation),
            (OpCode::Continuation, Some(_)) => self.message_len,
            (_, Some(_)) => return Err(Violation::UnfinishedMessage),
            (_, None) => 0,
        };
        if header.payload_len > self.limits.max_frame_size {
            return Err(Violation::FrameTooBig);
        }
        if message_len.saturating_add(header.payload_len) > self.limits.max_message_size {
            return Err(Violation::MessageTooBig);
        }
        Ok(())
    }

    /// A whole control frame in `frame` (header included).
    fn control(&mut self, header: FrameHeader, header_len: usize, frame: &mut [u8]) -> Step {
        let len = frame.len();
        let payload = &mut frame[header_len..];
        match header.opcode {
            OpCode::Close => {
                // Validate an unmasked copy: the forwarded bytes must stay as received.
                let mut copy = [0u8; MAX_CONTROL_PAYLOAD as usize];
                let copy = &mut copy[..payload.len()];
                copy.copy_from_slice(payload);
                if let Some(key) = header.mask {
                    apply_mask(copy, key, 0);
                }
                match parse_close_payload(copy) {
                    Ok(code) => {
                        self.state = State::Closed { discarded: false };
                        self.remask_control(&header, header_len, frame);
                        Step::Close { len, code }
                    }
                    Err(violation) => self.fail(violation, false),
                }
            }
            OpCode::Ping if self.sender == Sender::Client && self.limits.answer_pings => {
                if let Some(key) = header.mask {
                    apply_mask(payload, key, 0);
                }
                Step::AnswerPing {
                    len,
                    payload: header_len..len,
                }
            }
            _ => {
                self.remask_control(&header, header_len, frame);
                Step::Forward {
                    len,
                    done: Some(FrameDone {
                        opcode: header.opcode,
                        payload_len: header.payload_len,
                        fin: true,
                        message_end: None,
                    }),
                }
            }
        }
    }

    /// The key a forwarded frame of this header gets instead of its own, when re-masking is on.
    fn new_mask(&self, header: &FrameHeader) -> Option<[u8; 4]> {
        header.mask.and(self.limits.remask).map(|keys| keys())
    }

    /// Re-masks a whole control frame that is forwarded.
    fn remask_control(&self, header: &FrameHeader, header_len: usize, frame: &mut [u8]) {
        if let Some(key) = self.new_mask(header) {
            let masks = Masks {
                received: header.mask,
                forwarded: Some(key),
            };
            let (head, payload) = frame.split_at_mut(header_len);
            masks.remask(payload, 0);
            set_mask_key(head, key);
        }
    }
}

/// The key a payload arrived with and the key it leaves with (the same unless re-masking).
#[derive(Debug, Clone, Copy)]
struct Masks {
    received: Option<[u8; 4]>,
    forwarded: Option<[u8; 4]>,
}

/// Payload is inspected in blocks this size: unmasked, looked at and masked again while the block
/// is still in L1, so a re-masked text frame is walked once rather than three times.
const INSPECT_BLOCK: usize = 4096;

impl Masks {
    /// Moves a payload not otherwise inspected from the received key to the forwarded one in one
    /// pass (XOR with both keys); untouched when they are the same.
    fn remask(self, chunk: &mut [u8], offset: usize) {
        if let (Some(a), Some(b)) = (self.received, self.forwarded) {
            if a != b {
                let both = [a[0] ^ b[0], a[1] ^ b[1], a[2] ^ b[2], a[3] ^ b[3]];
                apply_mask(chunk, both, offset);
            }
        }
    }

    /// Shows `look` the unmasked payload block by block, leaving each block masked with the
    /// forwarded key. Stops at the first error (the frame is then never forwarded).
    fn inspect(
        self,
        chunk: &mut [u8],
        offset: usize,
        mut look: impl FnMut(&[u8]) -> Result<(), Violation>,
    ) -> Result<(), Violation> {
        for (i, block) in chunk.chunks_mut(INSPECT_BLOCK).enumerate() {
            let at = offset + i * INSPECT_BLOCK;
            if let Some(key) = self.received {
                apply_mask(block, key, at);
            }
            let result = look(block);
            if let Some(key) = self.forwarded {
                apply_mask(block, key, at);
            }
            result?;
        }
        Ok(())
    }
}

/// Writes `key` as the masking key of the header in `head` (its last four bytes, RFC 6455 §5.2).
fn set_mask_key(head: &mut [u8], key: [u8; 4]) {
    let at = head.len() - 4;
    head[at..].copy_from_slice(&key);
}

fn chunk_len(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
