//! The echo backend: answers the handshake, then streams every client frame back unmasked as it
//! arrives (payloads are unmasked on the fly, never buffered whole), pings as pongs, closes as closes.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::ws::{self, apply_mask, parse_header, put_header};

pub async fn serve(listen: &str) -> io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("listening {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            if stream.set_nodelay(true).is_ok() {
                let _ = echo(stream).await;
            }
        });
    }
}

/// One connection, plain or (in tests) TLS: the handshake, then echoes until the close.
pub async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) -> io::Result<()> {
    let (head, mut pending) = ws::read_head(&mut stream).await?;
    let head = String::from_utf8_lossy(&head);
    let key = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_string())
        })
        .ok_or_else(|| io::Error::other("no Sec-WebSocket-Key"))?;
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        ws::accept_key(&key)
    );
    stream.write_all(response.as_bytes()).await?;
    stream.flush().await?;

    let mut echo = Echo::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(64 * 1024 + 14);
    let n = pending.len();
    buf[..n].copy_from_slice(&pending);
    pending.clear();
    let mut filled = n;
    loop {
        let used = echo.step(&mut buf[..filled], &mut out);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            stream.flush().await?;
            out.clear();
        }
        if echo.closed {
            return stream.shutdown().await;
        }
        buf.copy_within(used..filled, 0);
        filled -= used;
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
    }
}

/// Where the echo is inside the current client frame.
#[derive(Default)]
pub(crate) struct Echo {
    remaining: u64,
    key: [u8; 4],
    offset: usize,
    close: bool,
    pub(crate) closed: bool,
}

impl Echo {
    /// Echoes what `data` holds; returns how many bytes it used (a partial header stays behind).
    pub(crate) fn step(&mut self, data: &mut [u8], out: &mut Vec<u8>) -> usize {
        let mut pos = 0;
        while pos < data.len() && !self.closed {
            if self.remaining == 0 {
                let Some(h) = parse_header(&data[pos..]) else {
                    break;
                };
                pos += h.header_len;
                let opcode = if h.opcode == ws::OP_PING {
                    ws::OP_PONG
                } else {
                    h.opcode
                };
                put_header(out, h.fin, opcode, h.len as usize, None);
                self.remaining = h.len;
                self.key = h.mask.unwrap_or([0; 4]);
                self.offset = 0;
                self.close = h.opcode == ws::OP_CLOSE;
            } else {
                let take = (self.remaining as usize).min(data.len() - pos);
                let chunk = &mut data[pos..pos + take];
                apply_mask(chunk, self.key, self.offset);
                out.extend_from_slice(chunk);
                pos += take;
                self.offset += take;
                self.remaining -= take as u64;
            }
            if self.remaining == 0 && self.close {
                self.closed = true;
            }
        }
        pos
    }
}
