//! A raw HTTP/2 client peer for hostile-client tests: frames written and read by hand (RFC 9113 §4),
//! HPACK by hand, no h2 crate, so a test can send what a correct library refuses to send.
//!
//! Over any `AsyncRead + AsyncWrite + Unpin` stream: a `TcpStream` with prior knowledge, or a
//! tokio-rustls client stream that negotiated ALPN `h2`. Every read has a timeout, so no test hangs.
#![allow(dead_code, unused_imports)] // each test binary uses a different part

pub mod frame;
pub mod hpack;
pub mod huffman;

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use frame::Frame;
pub use hpack::{decode_headers, encode_headers, Decoder, HpackError};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Frame types (RFC 9113 §6).
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

// Flags (RFC 9113 §6); ACK shares END_STREAM's bit on SETTINGS and PING.
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

// Settings identifiers (RFC 9113 §6.5.2, RFC 8441 §3).
pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;
pub const SETTINGS_ENABLE_CONNECT_PROTOCOL: u16 = 0x8;

// Error codes (RFC 9113 §7).
pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const INTERNAL_ERROR: u32 = 0x2;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const STREAM_CLOSED: u32 = 0x5;
pub const FRAME_SIZE_ERROR: u32 = 0x6;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const COMPRESSION_ERROR: u32 = 0x9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// The largest payload `read_frame` accepts unless lowered: a 24-bit length cannot say more.
pub const MAX_PAYLOAD: usize = 1 << 24;
/// How long one read waits for bytes before failing with `TimedOut`.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How many frames the helpers that wait for something read before giving up.
pub const FRAME_LIMIT: usize = 256;

/// An HTTP/2 client connection driven by hand.
pub struct H2Raw<S> {
    io: S,
    /// Bytes read but not yet parsed into a frame.
    buf: Vec<u8>,
    settings: Vec<(u16, u32)>,
    /// The connection's HPACK decoding state: every header block the server sends must pass here,
    /// in order, or later blocks decode wrong.
    pub decoder: Decoder,
    /// Header blocks decoded while waiting for another stream: `(stream, fields)`.
    pub stashed: Vec<(u32, Vec<(String, String)>)>,
    /// `:scheme` of `connect_websocket` ("http" by default; "https" over TLS).
    pub scheme: &'static str,
    pub max_payload: usize,
    pub read_timeout: Duration,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl<S: AsyncRead + AsyncWrite + Unpin> H2Raw<S> {
    /// Sends the preface and an empty SETTINGS, then reads until the server's SETTINGS and ACKs it.
    pub async fn handshake(io: S) -> io::Result<H2Raw<S>> {
        H2Raw::handshake_with(io, &[]).await
    }

    /// As `handshake`, announcing `settings` in our SETTINGS frame.
    pub async fn handshake_with(io: S, settings: &[(u16, u32)]) -> io::Result<H2Raw<S>> {
        let table = settings
            .iter()
            .rev()
            .find(|(id, _)| *id == SETTINGS_HEADER_TABLE_SIZE)
            .map_or(hpack::DEFAULT_TABLE_SIZE, |&(_, v)| v as usize);
        let mut h2 = H2Raw {
            io,
            buf: Vec::new(),
            settings: Vec::new(),
            decoder: Decoder::new(table),
            stashed: Vec::new(),
            scheme: "http",
            max_payload: MAX_PAYLOAD,
            read_timeout: READ_TIMEOUT,
        };
        let mut hello = PREFACE.to_vec();
        hello.extend(Frame::settings(settings).encode()?);
        h2.write_raw(&hello).await?;
        let server = h2
            .read_until(|f| f.kind == SETTINGS && f.flags & ACK == 0, FRAME_LIMIT)
            .await?
            .ok_or_else(|| invalid("the connection ended before the server's SETTINGS".into()))?;
        h2.apply_settings(&server).await?;
        Ok(h2)
    }

    /// Every setting the server sent, in order (a later pair overrides an earlier one).
    pub fn server_settings(&self) -> &[(u16, u32)] {
        &self.settings
    }

    /// The server's current value of setting `id`, if it sent one.
    pub fn server_setting(&self, id: u16) -> Option<u32> {
        self.settings
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map(|&(_, v)| v)
    }

    /// The underlying stream, to write bytes that are not even frames.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    pub async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    pub async fn write_frame(&mut self, frame: &Frame) -> io::Result<()> {
        self.write_raw(&frame.encode()?).await
    }

    /// The next frame, or `None` when the server closed the connection between frames.
    pub async fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some((frame, used)) = Frame::parse(&self.buf, self.max_payload)? {
                self.buf.drain(..used);
                return Ok(Some(frame));
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = tokio::time::timeout(self.read_timeout, self.io.read(&mut chunk))
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no frame within {:?}", self.read_timeout),
                    )
                })??;
            if n == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the connection ended inside a frame ({} bytes)",
                        self.buf.len()
                    ),
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads up to `limit` frames until one matches `pred` (the others are dropped); `None` at EOF.
    pub async fn read_until(
        &mut self,
        mut pred: impl FnMut(&Frame) -> bool,
        limit: usize,
    ) -> io::Result<Option<Frame>> {
        for _ in 0..limit {
            match self.read_frame().await? {
                Some(frame) if pred(&frame) => return Ok(Some(frame)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
        Err(invalid(format!("no matching frame in {limit} frames")))
    }

    /// Records a SETTINGS frame's pairs and ACKs it; an ACK needs nothing.
    async fn apply_settings(&mut self, frame: &Frame) -> io::Result<()> {
        if frame.flags & ACK != 0 {
            return Ok(());
        }
        let pairs = frame
            .settings_pairs()
            .ok_or_else(|| invalid(format!("malformed SETTINGS: {frame:?}")))?;
        self.settings.extend(pairs);
        self.write_frame(&Frame::settings_ack()).await
    }

    /// Answers what the connection asks of a client: PING gets its ACK, SETTINGS is applied and
    /// ACKed. Returns whether `frame` was such a frame.
    pub async fn serve_control(&mut self, frame: &Frame) -> io::Result<bool> {
        match frame.kind {
            PING if frame.flags & ACK == 0 => {
                self.write_frame(&Frame::ping(true, frame.payload.clone()))
                    .await?;
                Ok(true)
            }
            PING => Ok(true),
            SETTINGS if frame.stream == 0 => {
                self.apply_settings(frame).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Decodes a HEADERS frame's block, reading CONTINUATION frames until END_HEADERS.
    pub async fn decode(&mut self, headers: &Frame) -> io::Result<Vec<(String, String)>> {
        let mut block = headers
            .header_fragment()
            .ok_or_else(|| invalid(format!("not a well-formed HEADERS frame: {headers:?}")))?
            .to_vec();
        let mut flags = headers.flags;
        while flags & END_HEADERS == 0 {
            let next = self
                .read_frame()
                .await?
                .ok_or_else(|| invalid("the connection ended inside a header block".into()))?;
            if next.kind != CONTINUATION || next.stream != headers.stream {
                return Err(invalid(format!("expected CONTINUATION, got {next:?}")));
            }
            block.extend_from_slice(&next.payload);
            flags = next.flags;
        }
        decode_headers(&mut self.decoder, &block).map_err(|e| invalid(format!("HPACK: {e}")))
    }

    /// The next frame on `stream` or a GOAWAY, answering PING and SETTINGS on the way; header
    /// blocks of other streams are decoded into `stashed`, other frames dropped. `None` at EOF.
    /// A PUSH_PROMISE's block is not decoded: announce SETTINGS_ENABLE_PUSH = 0 to a server that
    /// pushes.
    pub async fn next_on_stream(&mut self, stream: u32) -> io::Result<Option<Frame>> {
        for _ in 0..FRAME_LIMIT {
            let Some(frame) = self.read_frame().await? else {
                return Ok(None);
            };
            if frame.stream == stream || frame.kind == GOAWAY {
                return Ok(Some(frame));
            }
            if frame.kind == HEADERS {
                let fields = self.decode(&frame).await?;
                self.stashed.push((frame.stream, fields));
            } else {
                self.serve_control(&frame).await?;
            }
        }
        Err(invalid(format!(
            "nothing on stream {stream} in {FRAME_LIMIT} frames"
        )))
    }

    /// Reads until `stream`'s response HEADERS and returns its `:status` and all its fields;
    /// RST_STREAM, GOAWAY, DATA first or EOF are errors that name what came instead.
    pub async fn response_status(
        &mut self,
        stream: u32,
    ) -> io::Result<(u16, Vec<(String, String)>)> {
        let fields = match self.stashed.iter().position(|(s, _)| *s == stream) {
            Some(i) => self.stashed.remove(i).1,
            None => {
                let frame = self.next_on_stream(stream).await?.ok_or_else(|| {
                    invalid(format!(
                        "the connection ended before stream {stream}'s response"
                    ))
                })?;
                match frame.kind {
                    HEADERS => self.decode(&frame).await?,
                    RST_STREAM => {
                        return Err(invalid(format!(
                            "stream {stream} reset with code {:?}",
                            frame.rst_code()
                        )))
                    }
                    GOAWAY => {
                        return Err(invalid(format!(
                            "GOAWAY before stream {stream}'s response: {:?}",
                            frame.goaway_fields()
                        )))
                    }
                    _ => return Err(invalid(format!("expected HEADERS, got {frame:?}"))),
                }
            }
        };
        let status = fields
            .iter()
            .find(|(n, _)| n == ":status")
            .and_then(|(_, v)| v.parse().ok())
            .ok_or_else(|| invalid(format!("no :status in {fields:?}")))?;
        Ok((status, fields))
    }

    /// Sends a header block as HEADERS (and CONTINUATION when it exceeds the server's
    /// SETTINGS_MAX_FRAME_SIZE), with END_HEADERS on the last frame.
    pub async fn headers(
        &mut self,
        stream: u32,
        fields: &[(&str, &str)],
        end_stream: bool,
    ) -> io::Result<()> {
        let max = self
            .server_setting(SETTINGS_MAX_FRAME_SIZE)
            .unwrap_or(16_384) as usize;
        for frame in Frame::header_block(stream, &encode_headers(fields), end_stream, max) {
            self.write_frame(&frame).await?;
        }
        Ok(())
    }

    /// Opens a WebSocket over HTTP/2 with extended CONNECT (RFC 8441 §4), `extra` after the
    /// pseudo-headers and sec-websocket-version.
    pub async fn connect_websocket(
        &mut self,
        stream: u32,
        authority: &str,
        path: &str,
        extra: &[(&str, &str)],
    ) -> io::Result<()> {
        let mut fields = vec![
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", self.scheme),
            (":path", path),
            (":authority", authority),
            ("sec-websocket-version", "13"),
        ];
        fields.extend_from_slice(extra);
        self.headers(stream, &fields, false).await
    }

    /// One DATA frame, however large: splitting is the test's choice.
    pub async fn data(&mut self, stream: u32, bytes: &[u8], end_stream: bool) -> io::Result<()> {
        self.write_frame(&Frame::data(stream, bytes, end_stream))
            .await
    }

    pub async fn rst_stream(&mut self, stream: u32, code: u32) -> io::Result<()> {
        self.write_frame(&Frame::rst_stream(stream, code)).await
    }

    pub async fn window_update(&mut self, stream: u32, increment: u32) -> io::Result<()> {
        self.write_frame(&Frame::window_update(stream, increment))
            .await
    }

    pub async fn goaway(&mut self, last_stream: u32, code: u32) -> io::Result<()> {
        self.write_frame(&Frame::goaway(last_stream, code, b""))
            .await
    }

    pub async fn ping(&mut self, data: [u8; 8]) -> io::Result<()> {
        self.write_frame(&Frame::ping(false, data.to_vec())).await
    }
}
