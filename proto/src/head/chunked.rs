//! A streaming decoder for the chunked transfer coding (RFC 9112 §7.1): fed whatever bytes the
//! caller has, it walks size lines, extensions, CRLFs and trailers itself and points at the payload
//! inside the caller's buffer. It keeps a few integers, never the bytes. No I/O.

use std::ops::Range;

use super::ChunkError;

/// The longest chunk size line without its CRLF: digits, whitespace and extensions.
const MAX_SIZE_LINE: usize = 4 * 1024;
/// The longest trailer section: its field lines and the final empty line.
const MAX_TRAILERS: usize = 8 * 1024;
/// Chunk sizes must fit in 63 bits, so that a size (or a sum the caller keeps) is never near
/// u64::MAX and always fits an i64.
const MAX_CHUNK: u64 = i64::MAX as u64;

/// One step of `ChunkedDecoder::decode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes of the input consumed, `data` included.
    pub consumed: usize,
    /// Payload bytes inside the input (empty if none); it always ends at `consumed`.
    pub data: Range<usize>,
    /// The body ended: the last chunk and its trailer section are consumed.
    pub done: bool,
}

/// Where in the chunked body the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a size; `digits` seen so far, `line` bytes of the line so far.
    Size {
        size: u64,
        digits: usize,
        line: usize,
    },
    /// After the digits: whitespace before `;`, then the extensions, up to the CR.
    Extension {
        size: u64,
        line: usize,
        ext: bool,
    },
    /// After the size line's CR.
    SizeLf {
        size: u64,
    },
    /// Payload bytes still to come in this chunk.
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// The start of a trailer line, or of the final empty line; `seen` trailer bytes so far.
    TrailerStart {
        seen: usize,
    },
    /// Inside a trailer field line (skipped, not kept).
    Trailer {
        seen: usize,
    },
    /// After a trailer line's CR.
    TrailerLf {
        seen: usize,
    },
    /// After the final empty line's CR.
    EndLf {
        seen: usize,
    },
    Done,
}

/// Decodes one chunked body. Small and allocation-free; the input stays the caller's.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size {
                size: 0,
                digits: 0,
                line: 0,
            },
        }
    }

    /// Walks `input` from its start: consumes size lines, extensions, CRLFs and trailers, and stops
    /// at the end of the first run of chunk payload (returned as `data`, empty if none), at the end of
    /// the input, or at the end of the body (`done`). The caller passes `&input[consumed..]` next
    /// time. Bytes after the end of the body are not consumed. Line endings are CRLF only: a bare CR
    /// or LF is an error, since a peer that reads it otherwise would put the body's end elsewhere.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, ChunkError> {
        let mut pos = 0;
        while pos < input.len() {
            if let State::Data { left } = self.state {
                let take = usize::try_from(left)
                    .map_or(input.len() - pos, |left| left.min(input.len() - pos));
                let left = left - take as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data { left }
                };
                return Ok(Decoded {
                    consumed: pos + take,
                    data: pos..pos + take,
                    done: false,
                });
            }
            if self.state == State::Done {
                break;
            }
            self.state = self.step(input[pos])?;
            pos += 1;
        }
        Ok(Decoded {
            consumed: pos,
            data: pos..pos,
            done: self.state == State::Done,
        })
    }

    /// The state after one framing byte (any state but `Data` and `Done`).
    fn step(&self, b: u8) -> Result<State, ChunkError> {
        let next = match self.state {
            State::Size { size, digits, line } => {
                let line = grow_line(line, b)?;
                match (b as char).to_digit(16) {
                    Some(digit) => {
                        if size > MAX_CHUNK >> 4 {
                            return Err(ChunkError::SizeOverflow);
                        }
                        let size = size << 4 | u64::from(digit);
                        State::Size {
                            size,
                            digits: digits + 1,
                            line,
                        }
                    }
                    None if digits == 0 => return Err(ChunkError::BadSizeLine),
                    None => extension(size, line, false, b)?,
                }
            }
            State::Extension { size, line, ext } => extension(size, grow_line(line, b)?, ext, b)?,
            State::SizeLf { size } => match (b, size) {
                (b'\n', 0) => State::TrailerStart { seen: 0 },
                (b'\n', left) => State::Data { left },
                _ => return Err(ChunkError::BadSizeLine),
            },
            State::DataCr if b == b'\r' => State::DataLf,
            State::DataLf if b == b'\n' => State::Size {
                size: 0,
                digits: 0,
                line: 0,
            },
            State::DataCr | State::DataLf => return Err(ChunkError::MissingCrlf),
            State::TrailerStart { seen }
            | State::Trailer { seen }
            | State::TrailerLf { seen }
            | State::EndLf { seen }
                if seen >= MAX_TRAILERS =>
            {
                return Err(ChunkError::TrailersTooLong {
                    limit: MAX_TRAILERS,
                })
            }
            State::TrailerStart { seen } if b == b'\r' => State::EndLf { seen: seen + 1 },
            State::TrailerStart { seen } | State::Trailer { seen } => match b {
                b'\r' => State::TrailerLf { seen: seen + 1 },
                b'\n' => return Err(ChunkError::BadTrailer),
                _ => State::Trailer { seen: seen + 1 },
            },
            State::TrailerLf { seen } if b == b'\n' => State::TrailerStart { seen: seen + 1 },
            State::EndLf { .. } if b == b'\n' => State::Done,
            State::TrailerLf { .. } | State::EndLf { .. } => return Err(ChunkError::BadTrailer),
            // `decode` handles these two without stepping.
            State::Data { .. } | State::Done => self.state,
        };
        Ok(next)
    }
}

/// Counts one more byte of a size line (its CR ends it, uncounted), up to `MAX_SIZE_LINE`.
fn grow_line(line: usize, b: u8) -> Result<usize, ChunkError> {
    if b == b'\r' {
        return Ok(line);
    }
    if line >= MAX_SIZE_LINE {
        return Err(ChunkError::LineTooLong {
            limit: MAX_SIZE_LINE,
        });
    }
    Ok(line + 1)
}

/// One byte after a size's digits: `*( BWS ";" ext )` then CR (RFC 9112 §7.1.1). Extension bytes
/// are skipped, not kept; control bytes other than HTAB are refused in them as everywhere in a head.
fn extension(size: u64, line: usize, ext: bool, b: u8) -> Result<State, ChunkError> {
    let ext = match b {
        b'\r' => return Ok(State::SizeLf { size }),
        b';' => true,
        b' ' | b'\t' => ext,
        _ if ext && b != 0x7f && b >= 0x20 => true,
        _ => return Err(ChunkError::BadSizeLine),
    };
    Ok(State::Extension { size, line, ext })
}
