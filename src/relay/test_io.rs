//! Test-only tunnel legs over in-memory pipes (`tokio::io::duplex`), optionally trickling (short
//! reads and writes, `Pending` every other call), and a harness that runs `relay::run` over them.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::buffer::ReadBuffer;
use super::io::{poll_read_via, Leg, TunnelIo};
use super::{TunnelParams, CLOSE_GRACE};
use crate::config::Keepalive;
use crate::drain::DrainSignal;
use crate::metrics::{Metrics, RouteMetrics};
use wsgate_proto::tracker::Limits;

/// The relay's end of one in-memory connection: records a reset instead of making one.
pub(super) struct TestLeg {
    io: Trickle,
    reset: Arc<AtomicBool>,
}

/// A duplex pipe that, with `chunk`, moves at most that many bytes per call and answers every
/// other call with `Pending` (waking itself at once).
pub(super) struct Trickle {
    inner: DuplexStream,
    chunk: Option<usize>,
    pend_read: bool,
    pend_write: bool,
}

/// Most bytes a trickling call moves.
const MAX_CHUNK: usize = 64;

impl AsyncRead for Trickle {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(chunk) = this.chunk else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        this.pend_read = !this.pend_read;
        if this.pend_read {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut bytes = [0u8; MAX_CHUNK];
        let n = chunk.min(buf.remaining()).min(MAX_CHUNK);
        let mut small = ReadBuf::new(&mut bytes[..n]);
        let read = Pin::new(&mut this.inner).poll_read(cx, &mut small);
        buf.put_slice(small.filled());
        read
    }
}

impl AsyncWrite for Trickle {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(chunk) = this.chunk else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        this.pend_write = !this.pend_write;
        if this.pend_write {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = chunk.min(buf.len());
        Pin::new(&mut this.inner).poll_write(cx, &buf[..n])
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

super::io::write_through!(impl AsyncWrite for TestLeg);

impl Leg for TestLeg {
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuffer,
    ) -> Poll<io::Result<usize>> {
        poll_read_via(&mut self.io, cx, buf)
    }

    fn reset_on_close(&mut self) {
        self.reset.store(true, Ordering::SeqCst);
    }

    /// A test leg stands for plain TCP: dropping it is the peer's EOF, as a close is a FIN.
    fn fin_on_close(&self) -> bool {
        true
    }
}

impl TunnelIo for TestLeg {
    type Leg = TestLeg;
    fn into_leg(self) -> Self::Leg {
        self
    }
}

/// A connection: the relay's `TestLeg` and the peer's end, with `buf` bytes of pipe each way.
fn connection(buf: usize, chunk: Option<usize>) -> Ends<TestLeg, DuplexStream> {
    let (ours, peer) = tokio::io::duplex(buf);
    let reset = Arc::new(AtomicBool::new(false));
    let io = Trickle {
        inner: ours,
        chunk,
        pend_read: false,
        pend_write: false,
    };
    let leg = TestLeg {
        io,
        reset: reset.clone(),
    };
    (leg, peer, reset)
}

pub(super) fn limits() -> Limits {
    Limits {
        max_frame_size: 1 << 20,
        max_message_size: 1 << 20,
        validate_utf8: true,
        answer_pings: false,
        compression: None,
        remask: None,
    }
}

/// How a test tunnel is set up.
pub(super) struct Setup {
    pub client_limits: Limits,
    pub upstream_limits: Limits,
    pub keepalive: Option<Keepalive>,
    pub idle_timeout: Option<Duration>,
    pub write_timeout: Duration,
    pub drain: DrainSignal,
    /// Pipe capacity each way on each leg.
    pub client_pipe: usize,
    pub upstream_pipe: usize,
    /// Trickle both legs through calls of at most this many bytes.
    pub chunk: Option<usize>,
    pub client_prefix: Bytes,
    pub rate_limit: Option<crate::config::TrafficLimit>,
    /// The tunnel's own end: after this long, with this code and reason.
    pub ends_after: Option<(Duration, u16, super::CloseReason)>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            client_limits: Limits {
                answer_pings: true,
                ..limits()
            },
            upstream_limits: limits(),
            keepalive: None,
            idle_timeout: None,
            write_timeout: Duration::from_secs(30),
            drain: DrainSignal::channel().1,
            client_pipe: 1 << 20,
            upstream_pipe: 1 << 20,
            chunk: None,
            client_prefix: Bytes::new(),
            rate_limit: None,
            ends_after: None,
        }
    }
}

/// A running tunnel and the peers at both of its ends (in-memory pipes unless told otherwise).
pub(super) struct Tunnel<CP = DuplexStream, UP = DuplexStream> {
    pub client: CP,
    pub upstream: UP,
    /// The relay reset the client's (upstream's) connection.
    pub client_reset: Arc<AtomicBool>,
    pub upstream_reset: Arc<AtomicBool>,
    pub route: Arc<RouteMetrics>,
    metrics: Metrics,
    started: Instant,
    task: JoinHandle<()>,
    /// The tunnel as `/tunnels` sees it.
    pub live: Arc<super::LiveTunnel>,
}

/// What a test tunnel is: a client at 127.0.0.1:1 on route "r".
pub fn test_info() -> super::TunnelInfo {
    super::TunnelInfo {
        id: 1,
        route: "r".into(),
        listener: "test".into(),
        client: ([127, 0, 0, 1], 1).into(),
        upstream: "u".into(),
        endpoint: "test".into(),
        transport: crate::metrics::Transport::H1,
        subprotocol: None,
        extensions: None,
        subject: None,
    }
}

/// One leg of a test tunnel: the relay's end, the peer's end, and the flag of a reset by the relay.
pub(super) type Ends<L, P> = (L, P, Arc<AtomicBool>);

impl Tunnel {
    pub fn start(setup: Setup) -> Tunnel {
        let client = connection(setup.client_pipe, setup.chunk);
        let upstream = connection(setup.upstream_pipe, setup.chunk);
        Tunnel::over(setup, client, upstream)
    }
}

impl<CP, UP> Tunnel<CP, UP> {
    /// Runs the relay over the given legs (the setup's pipes and chunk unused).
    pub fn over<C: TunnelIo, U: TunnelIo>(
        setup: Setup,
        (client_leg, client, client_reset): Ends<C, CP>,
        (upstream_leg, upstream, upstream_reset): Ends<U, UP>,
    ) -> Self {
        let metrics = Metrics::new();
        let route = metrics.route("r");
        let live = Arc::new(super::LiveTunnel::new(test_info()));
        let params = TunnelParams {
            client_limits: setup.client_limits,
            upstream_limits: setup.upstream_limits,
            metrics: route.clone(),
            close_grace: CLOSE_GRACE,
            drain: setup.drain,
            keepalive: setup.keepalive,
            idle_timeout: setup.idle_timeout,
            write_timeout: setup.write_timeout,
            tunnel: live.clone(),
            held: None,
            policy: Some(Box::new(super::Policy {
                rate_limit: setup.rate_limit,
                ends: setup.ends_after.map(|(after, code, reason)| super::Ending {
                    at: tokio::time::Instant::now() + after,
                    code,
                    reason,
                }),
            })),
        };
        let task = tokio::spawn(super::run(
            client_leg,
            setup.client_prefix,
            upstream_leg,
            Bytes::new(),
            params,
        ));
        Self {
            client,
            upstream,
            client_reset,
            upstream_reset,
            route,
            metrics,
            live,
            started: Instant::now(),
            task,
        }
    }

    /// Time since the tunnel started (the paused clock: exact).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits for the tunnel to end; returns when it did, since it started.
    pub async fn ended(&mut self) -> Duration {
        (&mut self.task).await.expect("the tunnel task panicked");
        self.elapsed()
    }

    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// The value of the series of `name` whose labels include `labels`, e.g.
    /// `("code", "1000")`, on the test route.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = self.metrics.render();
        let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        text.lines()
            .filter(|line| line.starts_with(&format!("{name}{{")))
            .filter(|line| line.contains("route=\"r\""))
            .find(|line| wanted.iter().all(|label| line.contains(label.as_str())))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no series {name} {labels:?} in\n{text}"))
    }
}

/// The masking key of every test client frame.
pub(super) const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame with `first` as its first byte (FIN, RSV, opcode), masked with `mask` if given.
pub(super) fn frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![first];
    let bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(bit | n as u8),
        n if n <= 0xffff => {
            out.push(bit | 126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(bit | 127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend(key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend(payload),
    }
    out
}

/// A frame as a client sends it (masked).
pub(super) fn from_client(first: u8, payload: &[u8]) -> Vec<u8> {
    frame(first, payload, Some(KEY))
}

/// A frame as a backend sends it (unmasked).
pub(super) fn from_upstream(first: u8, payload: &[u8]) -> Vec<u8> {
    frame(first, payload, None)
}

pub(super) const TEXT: u8 = 0x81;
pub(super) const BINARY: u8 = 0x82;
pub(super) const CLOSE: u8 = 0x88;
pub(super) const PING: u8 = 0x89;
pub(super) const PONG: u8 = 0x8a;

/// A close frame's payload: the code, then the reason.
pub(super) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend(reason.as_bytes());
    payload
}

/// A frame read off a peer's end: its first byte, whether it was masked, its unmasked payload.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Frame {
    pub first: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The code of a close frame.
    pub fn close_code(&self) -> u16 {
        assert_eq!(self.first, CLOSE, "not a close frame: {self:?}");
        u16::from_be_bytes([self.payload[0], self.payload[1]])
    }
}

pub(super) async fn read_frame(io: &mut (impl AsyncRead + Unpin)) -> Frame {
    let mut head = [0u8; 2];
    io.read_exact(&mut head).await.expect("a frame");
    let len = match head[1] & 0x7f {
        126 => u64::from(io.read_u16().await.unwrap()),
        127 => io.read_u64().await.unwrap(),
        n => u64::from(n),
    };
    let masked = head[1] & 0x80 != 0;
    let mut key = [0u8; 4];
    if masked {
        io.read_exact(&mut key).await.unwrap();
    }
    let mut payload = vec![0u8; len as usize];
    io.read_exact(&mut payload).await.unwrap();
    if masked {
        payload
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b ^= key[i % 4]);
    }
    Frame {
        first: head[0],
        masked,
        payload,
    }
}

/// Writes `bytes` into one peer's end and asserts that the other peer reads exactly them.
pub(super) async fn relays(
    from: &mut (impl AsyncWrite + Unpin),
    to: &mut (impl AsyncRead + Unpin),
    bytes: &[u8],
) {
    send(from, bytes).await;
    assert_eq!(read_bytes(to, bytes.len()).await, bytes);
}

/// Writes all of `bytes` and flushes them (a TLS peer may hold some back until then).
pub(super) async fn send(io: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) {
    io.write_all(bytes).await.unwrap();
    io.flush().await.unwrap();
}

pub(super) async fn read_bytes(io: &mut (impl AsyncRead + Unpin), n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    io.read_exact(&mut bytes).await.expect("bytes");
    bytes
}

/// The peer's end reads end of stream (the relay shut its side down or dropped it).
pub(super) async fn assert_eof(io: &mut (impl AsyncRead + Unpin)) {
    let mut byte = [0u8; 1];
    assert_eq!(
        io.read(&mut byte).await.expect("a clean end"),
        0,
        "more bytes"
    );
}

/// Nothing arrives at the peer's end for a millisecond of the paused clock (everything runnable
/// has run by then).
pub(super) async fn assert_quiet(io: &mut (impl AsyncRead + Unpin)) {
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(1), io.read(&mut byte)).await;
    assert!(read.is_err(), "unexpected read: {read:?} {byte:?}");
}
