//! The WebSocket tunnel after a validated 101: two pumps (client -> upstream, upstream -> client) that
//! validate every frame with the sans-I/O tracker and forward bytes untouched, plus the close timing.

mod control;
mod pump;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

use crate::drain::DrainSignal;
use crate::metrics::RouteMetrics;
use crate::proto::tracker::{Limits, Sender};
use pump::Pump;

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
}

/// State both pumps read: which side's close frame was forwarded, and the start of closing.
struct Shared {
    close_seen: [AtomicBool; 2],
    closing: Notify,
}

impl Shared {
    /// Records that `sender`'s close frame was forwarded; true when the other side's was too.
    fn close_forwarded(&self, sender: Sender) -> bool {
        // SeqCst: when both closes cross, at least one pump must see the other's flag.
        self.close_seen[index(sender)].store(true, Ordering::SeqCst);
        self.closing.notify_one();
        self.close_seen[index(other(sender))].load(Ordering::SeqCst)
    }
}

fn index(sender: Sender) -> usize {
    match sender {
        Sender::Client => 0,
        Sender::Upstream => 1,
    }
}

pub(crate) fn other(sender: Sender) -> Sender {
    match sender {
        Sender::Client => Sender::Upstream,
        Sender::Upstream => Sender::Client,
    }
}

/// On shutdown, at this tunnel's random moment of the drain window, the client gets a close frame
/// (written by the upstream -> client pump between frames). Its close reply then reaches the upstream
/// as an ordinary relayed close, so nothing the client sent before it is lost. Never completes.
async fn drain_close(mut drain: DrainSignal, to_client: mpsc::WeakSender<control::Inject>) {
    let plan = drain.started().await;
    let at = plan.started + plan.spread.mul_f64(rand::random::<f64>());
    tokio::time::sleep_until(at).await;
    if let Some(to_client) = to_client.upgrade() {
        let close = control::ControlFrame::close(plan.close_code, Sender::Client);
        let _ = to_client.send(control::Inject::Close(close)).await;
    }
    std::future::pending().await
}

/// Runs a tunnel to its end. `*_prefix` are bytes the HTTP layer read past the handshake.
pub async fn run(
    client: TcpStream,
    client_prefix: Bytes,
    upstream: TcpStream,
    upstream_prefix: Bytes,
    params: TunnelParams,
) {
    let metrics = params.metrics.clone();
    metrics.connections.inc();
    metrics.active.inc();
    let started = Instant::now();

    let shared = Shared {
        close_seen: [AtomicBool::new(false), AtomicBool::new(false)],
        closing: Notify::new(),
    };
    // Frames a pump asks the other pump to write toward its own sender (pongs, closes).
    let (to_client_tx, to_client_rx) = mpsc::channel(4);
    let (to_upstream_tx, to_upstream_rx) = mpsc::channel(4);
    let drain = drain_close(params.drain, to_client_tx.downgrade());
    let (client_rd, client_wr) = client.into_split();
    let (upstream_rd, upstream_wr) = upstream.into_split();

    let c2u = Pump::new(
        Sender::Client,
        client_rd,
        client_prefix,
        upstream_wr,
        params.client_limits,
        to_upstream_rx,
        to_client_tx,
        &metrics,
        &shared,
    );
    let u2c = Pump::new(
        Sender::Upstream,
        upstream_rd,
        upstream_prefix,
        client_wr,
        params.upstream_limits,
        to_client_rx,
        to_upstream_tx,
        &metrics,
        &shared,
    );
    let pumps = async { tokio::join!(c2u.run(), u2c.run()) };
    let grace = async {
        shared.closing.notified().await;
        tokio::time::sleep(params.close_grace).await;
    };
    tokio::select! {
        _ = pumps => {}
        _ = grace => tracing::debug!(route = %metrics.route, "tunnel close timed out"),
        _ = drain => {}
    }

    metrics.active.dec();
    metrics.duration.observe(started.elapsed().as_secs_f64());
}
