//! What the hostile HTTP/2 tests share: wsgate with HTTP/2 by prior knowledge in front of a
//! WebSocket echo backend and a plain backend that never answers `/hang`, the raw peer's requests,
//! and readers of how a stream or the whole connection ended.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::support::h2raw::*;
use crate::support::*;

pub type Peer = H2Raw<TcpStream>;

/// The counter of HTTP/2 connections wsgate cut off.
pub const CLOSED: &str = "wsgate_http2_connections_closed_total";

/// The heads of the requests the plain backend got, in order of arrival.
pub type Heads = Arc<Mutex<Vec<String>>>;

/// A plain HTTP/1.1 backend: `GET /hang…` is read and never answered (the connection is held until
/// wsgate lets go of it), anything else gets `200 ok`.
pub async fn plain_backend() -> (SocketAddr, Heads) {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let heads = Heads::default();
    let record = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                // Keep-alive: one connection may carry several requests.
                for _ in 0..100 {
                    let head = read_head(&mut stream).await;
                    if head.is_empty() {
                        return;
                    }
                    let hang = head.starts_with("GET /hang");
                    record.lock().unwrap().push(head);
                    if hang {
                        // Never answered: read (and drop) until wsgate closes its side.
                        let _ = tokio::io::copy(&mut stream, &mut tokio::io::sink()).await;
                        return;
                    }
                    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                    if stream.write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, heads)
}

pub struct Setup {
    pub running: wsgate::Running,
    pub addr: SocketAddr,
    pub ws_seen: Arc<Mutex<Seen>>,
    pub heads: Heads,
}

/// wsgate with the listener `public` (HTTP/2 by prior knowledge, `listener` added to its block:
/// lines indented four spaces), `/ws` to the echo backend, everything else to the plain backend.
pub async fn setup(listener: &str) -> Setup {
    let (ws, ws_seen) = echo_backend().await;
    let (plain, heads) = plain_backend().await;
    let running = start(&format!(
        r#"
listeners:
  - name: public
    bind: "127.0.0.1:0"
    http2: true
{listener}
upstreams:
  echo: {{ endpoints: ["{ws}"], connect_timeout: 1s }}
  plain: {{ endpoints: ["{plain}"], connect_timeout: 1s }}
routes:
  - name: echo
    match: {{ path_prefix: "/ws" }}
    upstream: echo
    websocket: {{}}
  - name: web
    match: {{ path_prefix: "/" }}
    upstream: plain
"#
    ))
    .await;
    let addr = running.listener_addr("public").unwrap();
    Setup {
        running,
        addr,
        ws_seen,
        heads,
    }
}

impl Setup {
    pub async fn peer(&self) -> Peer {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        H2Raw::handshake(tcp).await.expect("HTTP/2 handshake")
    }

    /// `wsgate_http2_connections_closed_total{listener="public"}` for each reason, once at least
    /// one cut-off has been counted (it is counted right after the socket closes, so a test that
    /// saw the close may look a moment too early).
    pub async fn closed_by_reason(&self) -> Vec<(&'static str, f64)> {
        eventually("an HTTP/2 cut-off to be counted", || {
            let text = self.running.metrics_text();
            let total = metric(&text, CLOSED, &[("listener", "public")])?;
            (total >= 1.0).then(|| {
                ["rapid_reset", "enhance_your_calm", "protocol_error"]
                    .into_iter()
                    .map(|r| {
                        let labels = [("listener", "public"), ("reason", r)];
                        (r, metric(&text, CLOSED, &labels).unwrap_or(0.0))
                    })
                    .collect()
            })
        })
        .await
    }

    /// One cut-off was counted, whatever its reason.
    pub async fn cut_off_once(&self) {
        let counted = self.closed_by_reason().await;
        let total: f64 = counted.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 1.0, "{counted:?}");
    }

    /// How many requests the plain backend got whose head contains `text`.
    pub fn heads_with(&self, text: &str) -> usize {
        let heads = self.heads.lock().unwrap();
        heads.iter().filter(|h| h.contains(text)).count()
    }
}

/// Exactly one cut-off, with `reason`, and none with another.
pub fn only(reason: &str) -> Vec<(&'static str, f64)> {
    ["rapid_reset", "enhance_your_calm", "protocol_error"]
        .into_iter()
        .map(|r| (r, if r == reason { 1.0 } else { 0.0 }))
        .collect()
}

/// A GET's header block.
pub fn get(path: &str) -> [(&str, &str); 4] {
    [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "app.example"),
    ]
}

/// How the connection ended, as the raw peer saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// A FIN between frames.
    Eof,
    /// An RST (wsgate closed with bytes of ours unread).
    Reset,
}

/// Reads until the connection ends (each read within the peer's timeout, at most `FRAME_LIMIT`
/// frames): the GOAWAY met on the way, if any, and how it ended. A connection still open fails.
pub async fn until_closed(h2: &mut Peer) -> (Option<(u32, u32, Vec<u8>)>, End) {
    let mut goaway = None;
    for _ in 0..FRAME_LIMIT {
        match h2.read_frame().await {
            Ok(Some(frame)) if frame.kind == GOAWAY => goaway = frame.goaway_fields(),
            Ok(Some(_)) => {}
            Ok(None) => return (goaway, End::Eof),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (goaway, End::Reset)
            }
            Err(e) => panic!("the connection was not closed: {e} (GOAWAY so far: {goaway:?})"),
        }
    }
    panic!("the connection was not closed within {FRAME_LIMIT} frames");
}

/// Sends a PING and reads until its ACK: the connection is still served. A GOAWAY or the end on
/// the way fails with `what`.
pub async fn still_open(h2: &mut Peer, what: &str) {
    let data = *b"stillup?";
    h2.ping(data)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let ack = h2
        .read_until(
            |f| (f.kind == PING && f.flags & ACK != 0) || f.kind == GOAWAY,
            FRAME_LIMIT,
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    match ack {
        Some(f) if f.kind == PING => assert_eq!(f.payload, data, "{what}"),
        other => panic!("{what}: the connection ended: {other:?}"),
    }
}

/// How a stream ended.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEnd {
    EndStream,
    Reset(u32),
}

/// The DATA bytes on `stream` until it ends (END_STREAM or RST_STREAM); at most `FRAME_LIMIT`
/// frames. The end of the connection or a GOAWAY fails.
pub async fn stream_data(h2: &mut Peer, stream: u32) -> (Vec<u8>, StreamEnd) {
    let mut bytes = Vec::new();
    for _ in 0..FRAME_LIMIT {
        let frame = h2
            .next_on_stream(stream)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("the connection ended before stream {stream} did"));
        match frame.kind {
            DATA => {
                bytes.extend_from_slice(frame.data_payload().unwrap());
                if frame.flags & END_STREAM != 0 {
                    return (bytes, StreamEnd::EndStream);
                }
            }
            RST_STREAM => return (bytes, StreamEnd::Reset(frame.rst_code().unwrap())),
            HEADERS if frame.flags & END_STREAM != 0 => return (bytes, StreamEnd::EndStream),
            _ => panic!("unexpected on stream {stream}: {frame:?}"),
        }
    }
    panic!("stream {stream} did not end within {FRAME_LIMIT} frames");
}

/// The next WebSocket frames wsgate sends on `stream` (at least one; up to `FRAME_LIMIT` DATA).
pub async fn ws_frames(h2: &mut Peer, stream: u32) -> Vec<(u8, Vec<u8>)> {
    let mut bytes = Vec::new();
    for _ in 0..FRAME_LIMIT {
        let frame = h2.next_on_stream(stream).await.unwrap().expect("a frame");
        assert_eq!(frame.kind, DATA, "on stream {stream}: {frame:?}");
        bytes.extend_from_slice(frame.data_payload().unwrap());
        let frames = parse_frames(&bytes);
        if !frames.is_empty() {
            return frames;
        }
    }
    panic!("no WebSocket frame on stream {stream}");
}
