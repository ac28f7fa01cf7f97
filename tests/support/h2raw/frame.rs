//! HTTP/2 frames as plain data (RFC 9113 §4.1): encoding, a parser that says "need more", builders
//! for the frames a client sends and readers for the fields a test checks. No I/O.

use std::io;

use super::*;

/// One frame. `stream` is written as given (a test may set the reserved bit) and read with the
/// reserved bit cleared; `payload` is never checked against the type, in either direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn new(kind: u8, flags: u8, stream: u32, payload: impl Into<Vec<u8>>) -> Frame {
        Frame {
            kind,
            flags,
            stream,
            payload: payload.into(),
        }
    }

    /// The 9-byte header and the payload; a payload the 24-bit length cannot say is refused.
    pub fn encode(&self) -> io::Result<Vec<u8>> {
        let len = self.payload.len();
        if len >= MAX_PAYLOAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a {len}-byte payload does not fit a 24-bit length"),
            ));
        }
        let mut out = Vec::with_capacity(9 + len);
        out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&self.stream.to_be_bytes());
        out.extend_from_slice(&self.payload);
        Ok(out)
    }

    /// The first frame of `buf` and the bytes it used, or `None` when `buf` holds less than a
    /// frame; a length above `max_payload` is an error before its payload arrives.
    pub fn parse(buf: &[u8], max_payload: usize) -> io::Result<Option<(Frame, usize)>> {
        let Some(head) = buf.get(..9) else {
            return Ok(None);
        };
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        if len > max_payload {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a frame announces {len} payload bytes, above the limit {max_payload}"),
            ));
        }
        let Some(payload) = buf.get(9..9 + len) else {
            return Ok(None);
        };
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        Ok(Some((
            Frame::new(head[3], head[4], stream, payload),
            9 + len,
        )))
    }

    pub fn settings(pairs: &[(u16, u32)]) -> Frame {
        let mut payload = Vec::with_capacity(pairs.len() * 6);
        for (id, value) in pairs {
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&value.to_be_bytes());
        }
        Frame::new(SETTINGS, 0, 0, payload)
    }

    pub fn settings_ack() -> Frame {
        Frame::new(SETTINGS, ACK, 0, Vec::new())
    }

    /// HEADERS with END_HEADERS: the whole `fields` block in one frame, whatever its size.
    pub fn headers(stream: u32, fields: &[(&str, &str)], end_stream: bool) -> Frame {
        let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
        Frame::new(HEADERS, flags, stream, encode_headers(fields))
    }

    /// A header block split into HEADERS and CONTINUATION frames of at most `max` bytes each
    /// (RFC 9113 §6.10), END_HEADERS on the last.
    pub fn header_block(stream: u32, block: &[u8], end_stream: bool, max: usize) -> Vec<Frame> {
        let mut chunks: Vec<&[u8]> = block.chunks(max.max(1)).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| {
                let kind = if i == 0 { HEADERS } else { CONTINUATION };
                let mut flags = if i == last { END_HEADERS } else { 0 };
                if i == 0 && end_stream {
                    flags |= END_STREAM;
                }
                Frame::new(kind, flags, stream, chunk)
            })
            .collect()
    }

    pub fn data(stream: u32, bytes: &[u8], end_stream: bool) -> Frame {
        Frame::new(DATA, if end_stream { END_STREAM } else { 0 }, stream, bytes)
    }

    pub fn rst_stream(stream: u32, code: u32) -> Frame {
        Frame::new(RST_STREAM, 0, stream, code.to_be_bytes())
    }

    pub fn window_update(stream: u32, increment: u32) -> Frame {
        Frame::new(WINDOW_UPDATE, 0, stream, increment.to_be_bytes())
    }

    pub fn goaway(last_stream: u32, code: u32, debug: &[u8]) -> Frame {
        let mut payload = last_stream.to_be_bytes().to_vec();
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(debug);
        Frame::new(GOAWAY, 0, 0, payload)
    }

    /// PING; `payload` should be 8 bytes (RFC 9113 §6.7), and a test may make it anything else.
    pub fn ping(ack: bool, payload: impl Into<Vec<u8>>) -> Frame {
        Frame::new(PING, if ack { ACK } else { 0 }, 0, payload)
    }

    /// SETTINGS pairs, or `None` when the payload is not a multiple of 6 (RFC 9113 §6.5).
    pub fn settings_pairs(&self) -> Option<Vec<(u16, u32)>> {
        if self.kind != SETTINGS || self.payload.len() % 6 != 0 {
            return None;
        }
        let pairs = self.payload.chunks_exact(6).map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        });
        Some(pairs.collect())
    }

    /// RST_STREAM's error code.
    pub fn rst_code(&self) -> Option<u32> {
        match (self.kind, self.payload.as_slice()) {
            (RST_STREAM, &[a, b, c, d]) => Some(u32::from_be_bytes([a, b, c, d])),
            _ => None,
        }
    }

    /// GOAWAY's last stream id (reserved bit cleared), error code and debug data.
    pub fn goaway_fields(&self) -> Option<(u32, u32, Vec<u8>)> {
        if self.kind != GOAWAY || self.payload.len() < 8 {
            return None;
        }
        let p = &self.payload;
        let last = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff;
        let code = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        Some((last, code, p[8..].to_vec()))
    }

    /// WINDOW_UPDATE's increment (reserved bit cleared).
    pub fn window_increment(&self) -> Option<u32> {
        match (self.kind, self.payload.as_slice()) {
            (WINDOW_UPDATE, &[a, b, c, d]) => Some(u32::from_be_bytes([a, b, c, d]) & 0x7fff_ffff),
            _ => None,
        }
    }

    /// HEADERS' block fragment without padding and priority fields (RFC 9113 §6.2); `None` when
    /// the padding or priority fields do not fit.
    pub fn header_fragment(&self) -> Option<&[u8]> {
        if self.kind != HEADERS && self.kind != CONTINUATION {
            return None;
        }
        if self.kind == CONTINUATION {
            return Some(&self.payload);
        }
        let mut body = self.payload.as_slice();
        let mut pad = 0;
        if self.flags & PADDED != 0 {
            let (&n, rest) = body.split_first()?;
            pad = usize::from(n);
            body = rest;
        }
        if self.flags & PRIORITY_FLAG != 0 {
            body = body.get(5..)?;
        }
        body.get(..body.len().checked_sub(pad)?)
    }

    /// DATA's payload without padding (RFC 9113 §6.1).
    pub fn data_payload(&self) -> Option<&[u8]> {
        if self.kind != DATA {
            return None;
        }
        if self.flags & PADDED == 0 {
            return Some(&self.payload);
        }
        let (&n, rest) = self.payload.split_first()?;
        rest.get(..rest.len().checked_sub(usize::from(n))?)
    }
}
