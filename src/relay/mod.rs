//! The WebSocket tunnel after a validated 101: two pumps (client -> upstream, upstream -> client) that
//! validate every frame with the sans-I/O tracker and forward bytes untouched, plus the close timing.

mod buffer;
mod control;
mod io;
mod mailbox;
mod pump;
mod shared;
mod timers;

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::Keepalive;
use crate::drain::DrainSignal;
use crate::metrics::RouteMetrics;
pub use io::TunnelIo;
use pump::Pump;
use shared::Shared;
use timers::{drain_close, watchdog};
use wsgate_proto::tracker::{Limits, Sender};

/// Once a peer is cut or found dead, how long the live side gets to take its close frame before the
/// tunnel is dropped.
const CUT_LINGER: Duration = Duration::from_secs(1);

/// How long a tunnel waits, once closing has started, for the close handshake and the TCP close.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Read buffer per direction; frames up to this size are validated whole before any byte is written.
pub const BUFFER_SIZE: usize = 32 * 1024;

pub struct TunnelParams {
    pub client_limits: Limits,
    pub upstream_limits: Limits,
    pub metrics: Arc<RouteMetrics>,
    pub close_grace: Duration,
    pub drain: DrainSignal,
    pub keepalive: Option<Keepalive>,
    pub idle_timeout: Option<Duration>,
    pub write_timeout: Duration,
    /// For the access log.
    pub peer: std::net::SocketAddr,
    pub endpoint: String,
    /// Whatever must live exactly as long as the tunnel (its places under connection limits).
    pub held: Option<Box<dyn std::any::Any + Send>>,
}

/// Runs a tunnel to its end. `*_prefix` are bytes the HTTP layer read past the handshake.
pub async fn run<C: TunnelIo, U: TunnelIo>(
    client: C,
    client_prefix: Bytes,
    upstream: U,
    upstream_prefix: Bytes,
    params: TunnelParams,
) {
    // Released when the tunnel ends, after the access log line.
    let _held = params.held;
    let metrics = params.metrics.clone();
    metrics.connections.inc();
    metrics.active.inc();
    let started = Instant::now();

    let shared = Shared::new();
    let drain = drain_close(params.drain, &shared);
    let (client_rd, client_wr) = client.split();
    let (upstream_rd, upstream_wr) = upstream.split();

    let mut c2u = Some(Pump::new(
        Sender::Client,
        client_rd,
        client_prefix,
        upstream_wr,
        params.client_limits,
        params.write_timeout,
        &metrics,
        &shared,
    ));
    let mut u2c = Some(Pump::new(
        Sender::Upstream,
        upstream_rd,
        upstream_prefix,
        client_wr,
        params.upstream_limits,
        params.write_timeout,
        &metrics,
        &shared,
    ));
    // Both pumps, polled in place (a join would hold a second copy of each); a pump is dropped
    // as soon as it ends, which tells the other one through its mailbox.
    let mut pumps = |cx: &mut Context<'_>| {
        if c2u
            .as_mut()
            .is_some_and(|p| Pin::new(p).poll(cx).is_ready())
        {
            c2u = None;
        }
        if u2c
            .as_mut()
            .is_some_and(|p| Pin::new(p).poll(cx).is_ready())
        {
            u2c = None;
        }
        if c2u.is_none() && u2c.is_none() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    };
    let mut drain = pin!(drain);
    let mut watchdog = pin!(watchdog(&shared, params.keepalive, params.idle_timeout));
    // One timer for whichever bound applies: the close grace once closing starts, or the linger
    // once the tunnel is condemned (a peer cut or found dead, or idle).
    let mut timer = pin!(tokio::time::sleep(Duration::ZERO));
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut condemned = false;
    std::future::poll_fn(|cx| {
        // The pumps go first: what they flag during this poll is seen below.
        if pumps(cx).is_ready() {
            return Poll::Ready(());
        }
        if !condemned {
            // Never completes: it posts a close to the client at its moment of the drain.
            let _ = drain.as_mut().poll(cx);
            let linger = if shared.is_cut() {
                Some(CUT_LINGER)
            } else if let Poll::Ready(verdict) = watchdog.as_mut().poll(cx) {
                tracing::debug!(route = %metrics.route, ?verdict, "watchdog ends the tunnel");
                for &(side, code) in timers::closes(verdict) {
                    shared.toward(side).post_close(code);
                }
                Some(match verdict {
                    timers::Verdict::Dead(_) => CUT_LINGER,
                    timers::Verdict::Idle => params.close_grace,
                })
            } else {
                None
            };
            if let Some(linger) = linger {
                condemned = true;
                deadline = Some(tokio::time::Instant::now() + linger);
            } else if deadline.is_none() && shared.is_closing() {
                deadline = Some(tokio::time::Instant::now() + params.close_grace);
            }
        }
        if let Some(at) = deadline {
            if timer.deadline() != at {
                timer.as_mut().reset(at);
            }
            if timer.as_mut().poll(cx).is_ready() {
                if !condemned {
                    tracing::debug!(route = %metrics.route, "tunnel close timed out");
                }
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await;

    metrics.active.dec();
    let duration = started.elapsed();
    metrics.duration.observe(duration.as_secs_f64());
    let stats = shared.stats();
    let [client, upstream] = [0, 1];
    tracing::info!(
        target: "wsgate::access",
        kind = "websocket",
        route = %metrics.route,
        peer = %params.peer,
        endpoint = %params.endpoint,
        duration_ms = duration.as_millis() as u64,
        client_frames = stats.frames[client],
        client_bytes = stats.bytes[client],
        upstream_frames = stats.frames[upstream],
        upstream_bytes = stats.bytes[upstream],
        client_close = ?stats.close_code[client],
        upstream_close = ?stats.close_code[upstream],
        closed_first = stats.first_closer.label(),
        "websocket session"
    );
}
