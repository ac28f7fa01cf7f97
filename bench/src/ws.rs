//! Just enough RFC 6455 for a load tool: the client handshake, masked frames out, frame headers in.
//! Payloads are never inspected, so the tool spends its time on the wire, not on parsing.

use std::io;

use base64::Engine;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use crate::headers::Headers;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// A `ws://` or `wss://` URL, split into what the connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub tls: bool,
    /// `host:port` as written (the port defaulted): what to resolve and the `Host` header.
    pub authority: String,
    /// The host alone (no brackets): the TLS server name.
    pub host: String,
    pub path: String,
}

pub fn parse_url(url: &str) -> Result<Url, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("ws://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("wss://") {
        (true, rest)
    } else {
        return Err(format!("{url}: only ws:// and wss:// URLs are supported"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    // A port is what follows the last ':' outside brackets ("[::1]:80", "localhost:80").
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    let (host, authority) = match authority[host_end..].rfind(':') {
        Some(i) => (&authority[..host_end + i], authority.to_string()),
        None => (
            authority,
            format!("{authority}:{}", if tls { 443 } else { 80 }),
        ),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{url}: no host"));
    }
    Ok(Url {
        tls,
        authority,
        host: host.to_string(),
        path: path.to_string(),
    })
}

/// Completes the opening handshake on a connected stream, with `headers` added to the request;
/// returns the stream and any bytes read past the response.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    url: &Url,
    rng: &mut Rng,
) -> io::Result<(S, Vec<u8>)> {
    connect_with(stream, url, &Headers::default(), rng).await
}

/// `connect` with extra request headers (a token for an authenticated route).
pub async fn connect_with<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    url: &Url,
    headers: &Headers,
    rng: &mut Rng,
) -> io::Result<(S, Vec<u8>)> {
    let (authority, path) = (&url.authority, &url.path);
    let key = base64::engine::general_purpose::STANDARD.encode(rng.next().to_le_bytes().repeat(2));
    let extra = headers.as_str();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    // A no-op on TCP; on TLS it pushes out the records the write left buffered.
    stream.flush().await?;
    let (head, rest) = read_head(&mut stream).await?;
    let head = String::from_utf8_lossy(&head);
    if !head.starts_with("HTTP/1.1 101") {
        let status = head.lines().next().unwrap_or("").to_string();
        return Err(io::Error::other(format!("handshake refused: {status}")));
    }
    let expected = accept_key(&key);
    let accepted = head.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("sec-websocket-accept") && value.trim() == expected
        })
    });
    if !accepted {
        return Err(io::Error::other("handshake: wrong Sec-WebSocket-Accept"));
    }
    Ok((stream, rest))
}

/// Reads an HTTP head; returns it and the bytes after its blank line.
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > 16 * 1024 {
            return Err(io::Error::other("HTTP head too large"));
        }
    }
}

/// A frame header as read off the wire.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub fin: bool,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub len: u64,
    pub header_len: usize,
}

/// Parses a frame header; `None` when more bytes are needed.
pub fn parse_header(buf: &[u8]) -> Option<Header> {
    if buf.len() < 2 {
        return None;
    }
    let (fin, opcode) = (buf[0] & 0x80 != 0, buf[0] & 0x0F);
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7F {
        126 => (
            u64::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        let key = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(key)
    } else {
        None
    };
    Some(Header {
        fin,
        opcode,
        mask,
        len,
        header_len: at,
    })
}

/// Appends a frame header; with `mask`, a masked (client) frame.
pub fn put_header(out: &mut Vec<u8>, fin: bool, opcode: u8, len: usize, mask: Option<[u8; 4]>) {
    out.push(if fin { 0x80 } else { 0 } | opcode);
    let m = if mask.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => out.push(m | len as u8),
        126..=0xFFFF => {
            out.push(m | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

/// XORs `data` with `key`, where `data` starts at byte `offset` of the payload.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let mut key = key;
    key.rotate_left(offset % 4);
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes((&*chunk).try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// Appends one complete masked client frame with a fresh key (RFC 6455 §5.3).
pub fn put_client_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], rng: &mut Rng) {
    let key = (rng.next() as u32).to_ne_bytes();
    put_header(out, true, opcode, payload.len(), Some(key));
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key, 0);
}

/// xorshift64*: mask keys and handshake keys need to vary, not to be cryptographic, in a load tool.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Counts whole messages in a stream of server frames without looking at payloads.
#[derive(Default)]
pub struct Reader {
    buf: Vec<u8>,
    /// Payload bytes still to skip in the current frame, and whether it ends a message.
    remaining: u64,
    fin: bool,
    pub closed: bool,
}

impl Reader {
    pub fn new(prefix: Vec<u8>) -> Self {
        Reader {
            buf: prefix,
            ..Default::default()
        }
    }

    /// Consumes `data` (after any carried bytes); returns the number of messages completed.
    pub fn feed(&mut self, data: &[u8]) -> u64 {
        if self.buf.is_empty() {
            return self.walk(data);
        }
        let mut joined = std::mem::take(&mut self.buf);
        joined.extend_from_slice(data);
        self.walk(&joined)
    }

    fn walk(&mut self, mut data: &[u8]) -> u64 {
        let mut messages = 0;
        while !data.is_empty() {
            if self.remaining > 0 {
                let take = self.remaining.min(data.len() as u64);
                self.remaining -= take;
                data = &data[take as usize..];
                if self.remaining == 0 && self.fin {
                    messages += 1;
                }
                continue;
            }
            let Some(h) = parse_header(data) else {
                self.buf = data.to_vec();
                break;
            };
            data = &data[h.header_len..];
            match h.opcode {
                OP_CLOSE => self.closed = true,
                OP_PING | OP_PONG => {}
                _ if h.len == 0 && h.fin => messages += 1,
                _ => {}
            }
            let control = h.opcode & 0x8 != 0;
            self.fin = h.fin && !control;
            self.remaining = h.len;
            if control && h.len == 0 {
                self.fin = false;
            }
        }
        messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_accept_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn urls_split_into_authority_host_and_path() {
        let url = parse_url("wss://localhost:8443/chat?x=1").unwrap();
        assert_eq!(
            url,
            Url {
                tls: true,
                authority: "localhost:8443".into(),
                host: "localhost".into(),
                path: "/chat?x=1".into(),
            }
        );
        let url = parse_url("ws://127.0.0.1").unwrap();
        assert_eq!(
            (url.tls, url.authority, url.path),
            (false, "127.0.0.1:80".into(), "/".into())
        );
        assert_eq!(parse_url("wss://[::1]:9/").unwrap().host, "::1");
        assert_eq!(parse_url("wss://[::1]/").unwrap().authority, "[::1]:443");
        assert!(parse_url("http://localhost/").is_err());
        assert!(parse_url("ws://:80/").is_err());
    }

    #[test]
    fn masking_round_trips_at_any_offset() {
        let payload: Vec<u8> = (0..100u8).collect();
        for offset in 0..4 {
            let mut data = payload.clone();
            apply_mask(&mut data[offset..], [1, 2, 3, 4], offset);
            for (i, b) in data.iter().enumerate().skip(offset) {
                assert_eq!(*b, payload[i] ^ [1, 2, 3, 4][i % 4]);
            }
        }
    }

    #[test]
    fn reader_counts_messages_split_anywhere() {
        let mut wire = Vec::new();
        for len in [0usize, 5, 200, 70_000] {
            put_header(&mut wire, true, OP_BINARY, len, None);
            wire.extend(std::iter::repeat_n(b'x', len));
        }
        put_header(&mut wire, true, OP_PONG, 3, None);
        wire.extend_from_slice(b"abc");
        for split in [1, 2, 3, 7, 100, 4096] {
            let mut reader = Reader::new(Vec::new());
            let n: u64 = wire.chunks(split).map(|c| reader.feed(c)).sum();
            assert_eq!(n, 4, "split {split}");
        }
    }
}
