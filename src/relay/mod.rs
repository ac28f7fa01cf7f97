//! The WebSocket tunnel after a validated 101: two pumps (client -> upstream, upstream -> client) that
//! validate every frame with the sans-I/O tracker and forward bytes untouched, plus the close timing.

mod buffer;
mod control;
mod io;
mod live;
mod mailbox;
mod pump;
mod rate;
mod shared;
pub mod stream_reset;
pub mod tap;
#[cfg(test)]
mod test_io;
#[cfg(test)]
mod test_tls;
#[cfg(test)]
mod tests;
mod timers;

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::{Keepalive, TrafficLimit};
use crate::drain::DrainSignal;
use crate::metrics::RouteMetrics;
pub use control::{CloseReason, MAX_REASON_LEN};
use io::Leg;
pub use io::{H2Stream, TunnelIo};
pub use live::{LiveTunnel, Snapshot, Traffic, TunnelInfo};
use pump::Pump;
use rate::RateGate;
use shared::{Shared, TunnelStats};
use timers::{drain_close, watchdog, Verdict};
use tokio::time::Sleep;
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
    /// What the tunnel is (its transport, peer and endpoint for the metrics and the access log)
    /// and its live state, which `/tunnels` reads.
    pub tunnel: Arc<LiveTunnel>,
    /// Whatever must live exactly as long as the tunnel (its places under connection limits).
    pub held: Option<Box<dyn std::any::Any + Send>>,
    /// Rate limits and the tunnel's own end; boxed, as most routes have neither and every byte
    /// here is part of each idle tunnel.
    pub policy: Option<Box<Policy>>,
}

/// What a route asks of its tunnels beyond the frame rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// `websocket.rate_limit`.
    pub rate_limit: Option<TrafficLimit>,
    /// A moment the tunnel is closed at: `max_duration` or its token's expiry.
    pub ends: Option<Ending>,
}

/// Both sides get this close at `at`, between frames.
#[derive(Debug, Clone, Copy)]
pub struct Ending {
    pub at: tokio::time::Instant,
    pub code: u16,
    pub reason: CloseReason,
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
    let live = params.tunnel;
    let info = &live.info;
    let metrics = params.metrics.clone();
    metrics.connection_opened(info.transport);
    metrics.active.inc();
    let started = Instant::now();

    let shared = &live.shared;
    let drain = drain_close(params.drain, shared);
    // In a block of its own, so that the tunnel's future keeps none of it but what it built.
    let (client_gate, upstream_gate, mut ending) = {
        let policy = params.policy.map(|p| *p).unwrap_or_default();
        let gate = |sender: Sender| {
            let limit = policy
                .rate_limit
                .filter(|l| sender == Sender::Client || l.both_directions)?;
            let counter = metrics.direction(sender).rate_limited.clone();
            Some(Box::new(RateGate::new(&limit, shared.now_ms(), counter)))
        };
        // Boxed, and only when set: most tunnels have no end of their own.
        let ending = policy.ends.map(|end| {
            Box::pin(async move {
                tokio::time::sleep_until(end.at).await;
                end
            })
        });
        (gate(Sender::Client), gate(Sender::Upstream), ending)
    };
    let mut pumps = Pumps {
        client: client.into_leg(),
        upstream: upstream.into_leg(),
        c2u: Some(Pump::new(
            Sender::Client,
            client_prefix,
            params.client_limits,
            params.write_timeout,
            &metrics,
            shared,
            client_gate,
        )),
        u2c: Some(Pump::new(
            Sender::Upstream,
            upstream_prefix,
            params.upstream_limits,
            params.write_timeout,
            &metrics,
            shared,
            upstream_gate,
        )),
    };
    let mut drain = pin!(drain);
    // Boxed, and only on routes with keepalive or idle_timeout: its timer is most of its size.
    let mut watchdog = (params.keepalive.is_some() || params.idle_timeout.is_some())
        .then(|| Box::pin(watchdog(shared, params.keepalive, params.idle_timeout)));
    let mut bound = Bound {
        timer: None,
        deadline: None,
        condemned: false,
        close_grace: params.close_grace,
    };
    std::future::poll_fn(|cx| {
        // The pumps go first: what they flag during this poll is seen below.
        if pumps.poll(cx, shared).is_ready() {
            return Poll::Ready(());
        }
        if !bound.condemned {
            // Never completes: it posts a close to the client at its moment of the drain.
            let _ = drain.as_mut().poll(cx);
            if let Some(timer) = ending.as_mut() {
                if let Poll::Ready(end) = timer.as_mut().poll(cx) {
                    tracing::debug!(route = %metrics.route, reason = end.reason.text(), "tunnel ends");
                    for side in [Sender::Client, Sender::Upstream] {
                        shared.toward(side).post_close_because(end.code, end.reason);
                    }
                    ending = None;
                }
            }
            bound.watch(cx, shared, watchdog.as_mut().map(|w| w.as_mut()), &metrics.route);
        }
        bound.poll_expired(cx, &metrics.route)
    })
    .await;

    metrics.active.dec();
    let duration = started.elapsed();
    metrics.duration.observe(duration.as_secs_f64());
    log_session(info, duration, shared.stats());
    live.end();
}

/// Both legs and both pumps, each pump lent its sender and receiver as it is polled, and dropped as
/// soon as it ends (which tells the other one through its mailbox). The legs close when the
/// tunnel ends. Not `join!`: a join of the two pumps in its own future measured 632 bytes more
/// per tunnel (room for each pump twice: the moved-from local and the join's slot).
struct Pumps<'a, C, U> {
    client: C,
    upstream: U,
    c2u: Option<Pump<'a>>,
    u2c: Option<Pump<'a>>,
}

impl<C: Leg, U: Leg> Pumps<'_, C, U> {
    fn poll(&mut self, cx: &mut Context<'_>, shared: &Shared) -> Poll<()> {
        let (client, upstream) = (&mut self.client, &mut self.upstream);
        if let Some(pump) = self.c2u.as_mut() {
            if pump.poll(cx, client, upstream).is_ready() {
                // A pump that shut its receiver down already sent the FIN.
                let finished = pump.dst_finished();
                self.c2u = None;
                if !finished {
                    upstream.end_writes();
                }
            }
        }
        if let Some(pump) = self.u2c.as_mut() {
            if pump.poll(cx, upstream, client).is_ready() {
                let finished = pump.dst_finished();
                self.u2c = None;
                if !finished {
                    client.end_writes();
                }
            }
        }
        // Both close frames are through and the upstream has closed: wsgate, the client's server,
        // closes first (RFC 6455 §7.1.1) rather than wait for the client's FIN; closing the socket
        // sends it ours. A TLS client leg still gets its close_notify from its pump.
        if self.u2c.is_none() && self.c2u.is_some() && shared.closes_done() && client.fin_on_close()
        {
            self.c2u = None;
        }
        if self.c2u.is_none() && self.u2c.is_none() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// One timer for whichever bound applies: the close grace once closing starts, or the linger
/// once the tunnel is condemned (a peer cut or found dead, or idle). The timer is made when first
/// needed: an open tunnel holds none.
struct Bound {
    timer: Option<Pin<Box<Sleep>>>,
    deadline: Option<tokio::time::Instant>,
    condemned: bool,
    close_grace: Duration,
}

impl Bound {
    /// Looks at what the pumps flagged and at the watchdog; sets the deadline that applies.
    fn watch(
        &mut self,
        cx: &mut Context<'_>,
        shared: &Shared,
        watchdog: Option<Pin<&mut impl Future<Output = Verdict>>>,
        route: &str,
    ) {
        let linger = if shared.is_cut() {
            Some(CUT_LINGER)
        } else if let Some(Poll::Ready(verdict)) = watchdog.map(|w| w.poll(cx)) {
            tracing::debug!(route = %route, ?verdict, "watchdog ends the tunnel");
            for &(side, code) in timers::closes(verdict) {
                shared.toward(side).post_close(code);
            }
            Some(match verdict {
                Verdict::Dead(_) => CUT_LINGER,
                Verdict::Idle => self.close_grace,
            })
        } else {
            None
        };
        if let Some(linger) = linger {
            self.condemned = true;
            self.deadline = Some(tokio::time::Instant::now() + linger);
        } else if self.deadline.is_none() && shared.is_closing() {
            self.deadline = Some(tokio::time::Instant::now() + self.close_grace);
        }
    }

    /// Ready once the deadline, if any, has passed.
    fn poll_expired(&mut self, cx: &mut Context<'_>, route: &str) -> Poll<()> {
        let Some(at) = self.deadline else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if timer.deadline() != at {
            timer.as_mut().reset(at);
        }
        ready!(timer.as_mut().poll(cx));
        if !self.condemned {
            tracing::debug!(route = %route, "tunnel close timed out");
        }
        Poll::Ready(())
    }
}

/// The access log line of a session.
fn log_session(info: &TunnelInfo, duration: Duration, stats: TunnelStats) {
    let [client, upstream] = [0, 1];
    tracing::info!(
        target: "wsgate::access",
        kind = "websocket",
        route = %info.route,
        protocol = info.transport.protocol_label(),
        peer = %info.client,
        endpoint = %info.endpoint,
        tunnel = info.id,
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
