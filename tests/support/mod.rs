//! Shared test peers: wsgate started from YAML on 127.0.0.1:0, a tokio-tungstenite echo backend,
//! raw TCP clients and backends for hostile bytes, a raw HTTP/2 client (h2raw), frame builders, and
//! metric readers.
#![allow(dead_code, clippy::result_large_err)]

pub mod h2;
pub mod h2raw;
pub mod preset;
mod process;

#[allow(unused_imports)]
pub use process::*;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Starts wsgate from a YAML document.
pub async fn start(yaml: &str) -> wsgate::Running {
    let config = wsgate::Config::from_yaml(yaml).unwrap_or_else(|e| panic!("{:?}", e.messages()));
    wsgate::start(config).await.expect("wsgate starts")
}

/// A config with one listener, the admin listener and one route `echo` to `backend`; `websocket`
/// is the route's websocket block (YAML flow mapping, e.g. `{ ping: forward }`).
pub fn config(backend: SocketAddr, websocket: &str) -> String {
    format!(
        r#"
listeners:
  - name: public
    bind: "127.0.0.1:0"
admin:
  bind: "127.0.0.1:0"
upstreams:
  echo:
    endpoints: ["{backend}"]
    connect_timeout: 1s
routes:
  - name: echo
    match: {{ path_prefix: "/" }}
    upstream: echo
    websocket: {websocket}
"#
    )
}

/// A config with one listener and one route `app` to the upstream `app` over `endpoints`;
/// `upstream` is extra lines of the upstream's block (indented four spaces).
pub fn upstream_config(endpoints: &[SocketAddr], upstream: &str) -> String {
    let list: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" }}]
upstreams:
  app:
    endpoints: [{}]
    connect_timeout: 300ms
{upstream}
routes: [{{ name: app, upstream: app }}]
"#,
        list.join(", ")
    )
}

pub async fn start_for(backend: SocketAddr, websocket: &str) -> (wsgate::Running, SocketAddr) {
    let running = start(&config(backend, websocket)).await;
    let addr = running.listener_addr("public").unwrap();
    (running, addr)
}

/// What a backend saw.
#[derive(Default)]
pub struct Seen {
    pub messages: Vec<Message>,
    pub request_headers: Vec<(String, String)>,
    /// The path and query of each upgrade request.
    pub paths: Vec<String>,
}

/// A tokio-tungstenite echo server: echoes data messages, honours the first offered subprotocol,
/// and records every message (pings and closes included) and the request headers.
pub async fn echo_backend() -> (SocketAddr, Arc<Mutex<Seen>>) {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = socket.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let headers = record.clone();
                let callback = move |req: &Request, mut resp: Response| {
                    let mut seen = headers.lock().unwrap();
                    seen.paths.push(req.uri().to_string());
                    for (k, v) in req.headers() {
                        seen.request_headers
                            .push((k.to_string(), v.to_str().unwrap_or("").to_owned()));
                    }
                    if let Some(p) = req.headers().get("sec-websocket-protocol") {
                        let first = p.to_str().unwrap().split(',').next().unwrap().trim();
                        resp.headers_mut()
                            .insert("sec-websocket-protocol", first.parse().unwrap());
                    }
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    record.lock().unwrap().messages.push(msg.clone());
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// A WebSocket key: 16 random bytes in base64.
pub fn new_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>())
}

/// A raw client connection after a successful upgrade through wsgate.
pub struct RawClient {
    pub stream: TcpStream,
    pub response: String,
}

/// Sends `request` (a whole HTTP head) and returns the stream and the response head.
pub async fn raw_request(addr: SocketAddr, request: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    (stream, head)
}

/// An upgrade request for `path` with `extra` header lines (each ending in \r\n).
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test.local\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n",
        new_key()
    )
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        let started = std::time::Instant::now();
        let (stream, response) = raw_request(addr, &upgrade_request("/ws", "")).await;
        assert!(
            response.starts_with("HTTP/1.1 101"),
            "upgrade through {addr} failed after {:?}; response head {response:?} (empty: no byte \
             within {TIMEOUT:?}, or the connection ended)",
            started.elapsed()
        );
        RawClient { stream, response }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    pub async fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        read_frame(&mut self.stream).await
    }
}

/// A connection to `addr` from the source address `ip` (any of 127.0.0.0/8 works on Linux).
pub async fn connect_from(ip: &str, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Sends `request` from source address `ip`; returns the stream and the response head.
pub async fn request_from(ip: &str, addr: SocketAddr, request: &str) -> (TcpStream, String) {
    let mut stream = connect_from(ip, addr).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    (stream, head)
}

/// Reads an HTTP head byte by byte (so nothing after it is consumed).
pub async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(TIMEOUT, stream.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A frame's bytes: `first` is the whole first byte (FIN, RSV, opcode); masked when a key is given.
pub fn frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![first];
    let bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(bit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

pub const KEY: [u8; 4] = [0xA1, 0xB2, 0xC3, 0xD4];

/// A masked client frame.
pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    frame(first, payload, Some(KEY))
}

/// Reads one frame (unmasking it); `None` on EOF, reset or timeout.
pub async fn read_frame(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let read = async {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).await.ok()?;
        let mut len = u64::from(head[1] & 0x7F);
        if len == 126 {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b).await.ok()?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b).await.ok()?;
            len = u64::from_be_bytes(b);
        }
        let mut key = None;
        if head[1] & 0x80 != 0 {
            let mut k = [0u8; 4];
            stream.read_exact(&mut k).await.ok()?;
            key = Some(k);
        }
        let mut payload = vec![0u8; len as usize];
        stream.read_exact(&mut payload).await.ok()?;
        if let Some(k) = key {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= k[i % 4];
            }
        }
        Some((head[0], payload))
    };
    tokio::time::timeout(TIMEOUT, read).await.ok().flatten()
}

/// Reads frames until a close frame; returns its code (`None` for an empty close) and whether it was
/// masked is not checked here. Panics if the connection ends first.
pub async fn read_close(stream: &mut TcpStream) -> Option<u16> {
    loop {
        let (first, payload) = read_frame(stream).await.expect("a close frame");
        if first & 0x0F == 0x8 {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
}

/// Everything until EOF (or the timeout).
pub async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut out)).await;
    out
}

/// Everything the client gets after an HTTP answer `head` that must not be followed by anything
/// else: if the answer closes the connection, the bytes until EOF; else a marker request follows on
/// the same connection and the bytes until its answer ends the connection, which then holds that
/// answer last (anything sent before it came first). Panics if the connection neither ends nor
/// answers within the timeout.
pub async fn rest_after_answer(stream: &mut TcpStream, head: &str) -> Vec<u8> {
    let keep_alive = !head.to_ascii_lowercase().contains("connection: close");
    if keep_alive {
        let marker = "GET /marker HTTP/1.1\r\nHost: marker\r\nConnection: close\r\n\r\n";
        let _ = stream.write_all(marker.as_bytes()).await;
    }
    let mut out = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut out))
        .await
        .expect("the connection ends")
        .ok();
    if keep_alive {
        assert!(
            out.windows(9).any(|w| w == b"HTTP/1.1 "),
            "the marker request was not answered: {:?}",
            String::from_utf8_lossy(&out)
        );
    }
    out
}

/// A raw backend: reads the upgrade request, answers with `respond(accept)` where `accept` is the
/// correct Sec-WebSocket-Accept, sends `after` once upgraded, and records every byte received after
/// the request head. Serves one connection.
pub async fn raw_backend(
    respond: impl Fn(&str) -> String + Send + 'static,
    after: Vec<u8>,
) -> (SocketAddr, Arc<Mutex<RawSeen>>) {
    let (addr, seen, _) = raw_backend_with_outbox(respond, after).await;
    (addr, seen)
}

/// Like `raw_backend`, and whatever is sent on the returned channel is written once upgraded (a
/// marker frame, to prove by its arrival that nothing came before it).
pub async fn raw_backend_with_outbox(
    respond: impl Fn(&str) -> String + Send + 'static,
    after: Vec<u8>,
) -> (
    SocketAddr,
    Arc<Mutex<RawSeen>>,
    tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
) {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(RawSeen::default()));
    let record = seen.clone();
    let (outbox, mut queued) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = socket.accept().await else {
            return;
        };
        let head = read_head(&mut stream).await;
        let key = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| v.trim().to_owned())
            })
            .unwrap_or_default();
        record.lock().unwrap().head = head;
        let accept = wsgate_proto::handshake::accept_key(key.as_bytes());
        stream.write_all(respond(&accept).as_bytes()).await.unwrap();
        stream.write_all(&after).await.unwrap();
        let mut buf = [0u8; 4096];
        let mut open_outbox = true;
        loop {
            tokio::select! {
                more = queued.recv(), if open_outbox => match more {
                    Some(bytes) => {
                        let _ = stream.write_all(&bytes).await;
                    }
                    None => open_outbox = false,
                },
                read = tokio::time::timeout(TIMEOUT, stream.read(&mut buf)) => match read {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(n)) => record.lock().unwrap().bytes.extend_from_slice(&buf[..n]),
                },
            }
        }
        record.lock().unwrap().closed = true;
    });
    (addr, seen, outbox)
}

#[derive(Default, Debug)]
pub struct RawSeen {
    pub head: String,
    pub bytes: Vec<u8>,
    /// The connection ended (EOF, reset or timeout).
    pub closed: bool,
}

/// A valid 101 for the raw backend.
pub fn switching(accept: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
}

/// Waits until `check` holds (polling), or panics after the timeout.
pub async fn eventually<T: std::fmt::Debug>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the async `check` holds (polling), or panics after the timeout.
pub async fn eventually_async<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The frames in a byte string sent by a client (masked) or upstream: (first byte, unmasked payload).
pub fn parse_frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    parse_frames_keyed(bytes)
        .into_iter()
        .map(|(first, _, payload)| (first, payload))
        .collect()
}

/// Like `parse_frames`, with each frame's masking key: (first byte, key, unmasked payload).
pub fn parse_frames_keyed(mut bytes: &[u8]) -> Vec<(u8, Option<[u8; 4]>, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let mut at = 2;
        let mut len = usize::from(bytes[1] & 0x7F);
        if len == 126 {
            len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
            at = 4;
        } else if len == 127 {
            len = u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize;
            at = 10;
        }
        let key = (bytes[1] & 0x80 != 0).then(|| {
            let k: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
            at += 4;
            k
        });
        if bytes.len() < at + len {
            break;
        }
        let mut payload = bytes[at..at + len].to_vec();
        if let Some(k) = key {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= k[i % 4];
            }
        }
        out.push((bytes[0], key, payload));
        bytes = &bytes[at + len..];
    }
    out
}

/// GET /metrics over raw HTTP.
pub async fn scrape(admin: SocketAddr) -> String {
    let (mut stream, head) = raw_request(
        admin,
        "GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    String::from_utf8(read_to_end(&mut stream).await).unwrap()
}

/// The sum of the series `name` that have every label of `labels` (as PromQL's `sum(name{...})`: a
/// series split by `transport` or `protocol` sums over both unless the test names one), `None`
/// when none is exported (so that asserting 0 on a mistyped name or label fails instead of
/// passing).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let mut sum = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, label_text) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            continue;
        }
        let have: BTreeMap<&str, &str> = label_text
            .split(',')
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        if want.iter().all(|(k, v)| have.get(k) == Some(v)) {
            *sum.get_or_insert(0.0) += value.parse::<f64>().unwrap();
        }
    }
    sum
}

/// How many series of `name` are exported.
pub fn series_count(text: &str, name: &str) -> usize {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .count()
}

/// Connects a tokio-tungstenite client to `ws://addr/path`.
pub async fn ws_client(
    addr: SocketAddr,
    path: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{path}"))
        .await
        .expect("upgrade through wsgate");
    ws
}

/// Waits until the route's tunnels have all ended (`wsgate_ws_connections_active` is 0).
pub async fn tunnels_closed(running: &wsgate::Running, route: &str) {
    eventually("tunnels closed", || {
        let text = running.metrics_text();
        (metric(&text, "wsgate_ws_connections_active", &[("route", route)]) == Some(0.0))
            .then_some(())
    })
    .await;
}

/// The text messages a backend received, in order.
pub fn texts(seen: &Arc<Mutex<Seen>>) -> Vec<String> {
    seen.lock()
        .unwrap()
        .messages
        .iter()
        .filter_map(|m| m.to_text().ok().map(str::to_owned))
        .collect()
}
