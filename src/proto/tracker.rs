//! The incremental, direction-aware frame validator the relay drives. It is fed the unconsumed front
//! of a read buffer and says what to do with the next bytes: forward them untouched, answer a ping,
//! pass a close, drop, or fail with a violation. It never owns or copies the buffer. No I/O.

use core::ops::Range;

use super::close::parse_close_payload;
use super::frame::{parse_header, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD};
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
    /// RSV bits a negotiated extension allows (0 while none is).
    pub allowed_rsv: u8,
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
    /// The payload is text to check as UTF-8.
    inspect: bool,
}

pub struct Tracker {
    sender: Sender,
    limits: Limits,
    state: State,
    /// The open fragmented message's type, `None` between messages.
    message: Option<OpCode>,
    message_len: u64,
    utf8: Utf8Validator,
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

        let inspect = self.limits.validate_utf8
            && match header.opcode {
                OpCode::Continuation => self.message == Some(OpCode::Text),
                opcode => opcode == OpCode::Text,
            };
        let mut streaming = Streaming {
            header,
            remaining: header.payload_len,
            offset: 0,
            inspect,
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
        if streaming.inspect {
            self.check_text(chunk, streaming.header.mask, streaming.offset)?;
        }
        streaming.offset += chunk.len();
        streaming.remaining -= chunk.len() as u64;
        if streaming.remaining > 0 {
            self.state = State::Payload(*streaming);
            return Ok(None);
        }
        if streaming.inspect && streaming.header.fin {
            self.utf8.finish().map_err(|_| Violation::InvalidUtf8)?;
        }
        self.state = State::Header;
        Ok(Some(()))
    }

    /// Unmasks in place to look, then masks again: the forwarded bytes stay exactly as received.
    fn check_text(
        &mut self,
        chunk: &mut [u8],
        mask: Option<[u8; 4]>,
        offset: usize,
    ) -> Result<(), Violation> {
        if let Some(key) = mask {
            apply_mask(chunk, key, offset);
        }
        let result = self.utf8.feed(chunk);
        if let Some(key) = mask {
            apply_mask(chunk, key, offset);
        }
        result.map_err(|_| Violation::InvalidUtf8)
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
        if header.rsv & !self.limits.allowed_rsv != 0 {
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
            _ => Step::Forward {
                len,
                done: Some(FrameDone {
                    opcode: header.opcode,
                    payload_len: header.payload_len,
                    fin: true,
                    message_end: None,
                }),
            },
        }
    }
}

fn chunk_len(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
