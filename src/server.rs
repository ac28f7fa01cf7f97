//! Listeners: bind every configured address, accept connections and serve HTTP/1.1 on each with
//! upgrades enabled. `start` is the library entry point the binary and the tests use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin;
use crate::config::{Config, ListenerConfig, ShutdownConfig};
use crate::drain::{DrainPlan, DrainSignal, Live, LiveGuard, SPREAD_SHARE};
use crate::metrics::Metrics;
use crate::proxy::Proxy;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listener {name:?}: cannot bind {addr}: {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A started wsgate: the addresses it actually bound, and the handle to stop it.
pub struct Running {
    listeners: Vec<(String, SocketAddr)>,
    admin: Option<SocketAddr>,
    metrics: Metrics,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    shutdown: ShutdownConfig,
    drain: watch::Sender<Option<DrainPlan>>,
    live: Arc<Live>,
    admin_task: Option<JoinHandle<()>>,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Connections still open at the deadline (dropped when the process exits).
    pub left_open: usize,
}

impl Running {
    /// Every listener's name and bound address, in config order.
    pub fn listeners(&self) -> &[(String, SocketAddr)] {
        &self.listeners
    }

    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, addr)| *addr)
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The Prometheus text this instance serves on `/metrics`.
    pub fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    /// Stops accepting new connections; open connections run on until they end.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Open connections: HTTP client connections and WebSocket tunnels.
    pub fn live_connections(&self) -> usize {
        self.live.count()
    }

    /// Graceful shutdown (SIGTERM): stop accepting, answer `/readyz` with 503, let HTTP requests in
    /// flight finish, and send every tunnel's client a close frame (`shutdown.close_code`) at a random
    /// moment of the first 80% of `drain_timeout`, between frames. Resolves when every connection is
    /// done or at the deadline.
    pub async fn drain(&self) -> DrainReport {
        let window = self.shutdown.drain_timeout;
        let started = tokio::time::Instant::now();
        self.stop();
        let _ = self.drain.send(Some(DrainPlan {
            started,
            spread: window.mul_f64(SPREAD_SHARE),
            close_code: self.shutdown.close_code,
        }));
        tracing::info!(connections = self.live.count(), ?window, "draining");
        let _ = tokio::time::timeout_at(started + window, self.live.idle()).await;
        let left_open = self.live.count();
        tracing::info!(left_open, elapsed = ?started.elapsed(), "drained");
        DrainReport { left_open }
    }

    /// Waits until every accept loop has ended (after `stop`).
    pub async fn join(mut self) {
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(admin) = &self.admin_task {
            admin.abort();
        }
    }
}

/// Binds every listener (and the admin listener), then serves in background tasks.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let metrics = Metrics::new();
    let (drain, signal) = DrainSignal::channel();
    let live = Arc::new(Live::default());
    let proxy = Arc::new(Proxy::new(
        &config,
        metrics.clone(),
        signal.clone(),
        live.clone(),
    ));
    let (stop, stopped) = watch::channel(false);
    let mut listeners = Vec::new();
    let mut tasks = Vec::new();

    for listener in &config.listeners {
        let socket = bind(&listener.name, listener.bind).await?;
        let addr = socket.local_addr().unwrap_or(listener.bind);
        tracing::info!(listener = %listener.name, %addr, "listening");
        listeners.push((listener.name.clone(), addr));
        tasks.push(tokio::spawn(accept_loop(
            socket,
            proxy.clone(),
            listener.clone(),
            stopped.clone(),
        )));
    }

    let mut admin_task = None;
    let admin = match &config.admin {
        Some(cfg) => {
            let socket = bind("admin", cfg.bind).await?;
            let addr = socket.local_addr().unwrap_or(cfg.bind);
            tracing::info!(%addr, "admin listening (/metrics, /healthz, /readyz)");
            admin_task = Some(tokio::spawn(admin::serve(
                socket,
                metrics.clone(),
                signal.clone(),
            )));
            Some(addr)
        }
        None => None,
    };

    Ok(Running {
        listeners,
        admin,
        metrics,
        stop,
        tasks,
        shutdown: config.shutdown,
        drain,
        live,
        admin_task,
    })
}

pub(crate) async fn bind(name: &str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            name: name.to_owned(),
            addr,
            source,
        })
}

/// Holds a connection's places in the live counts (all connections, and its listener's) for as long as
/// the HTTP connection or the tunnel it became lives.
pub struct ConnectionSlot {
    _all: LiveGuard,
    _listener: LiveGuard,
}

/// Past `max_connections` a new connection gets this and is closed (as Envoy does; clients retry).
const OVER_CAPACITY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n";

async fn accept_loop(
    socket: TcpListener,
    proxy: Arc<Proxy>,
    config: ListenerConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let open = Arc::new(Live::default());
    loop {
        tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    let listener_slot = match config.max_connections {
                        Some(max) => open.try_enter(max),
                        None => Some(open.enter()),
                    };
                    let Some(listener_slot) = listener_slot else {
                        proxy.metrics.connection_rejected(&config.name);
                        tracing::debug!(listener = %config.name, %peer, "max_connections reached: 503");
                        let _ = stream.try_write(OVER_CAPACITY);
                        continue;
                    };
                    let slot = Arc::new(ConnectionSlot {
                        _all: proxy.live.enter(),
                        _listener: listener_slot,
                    });
                    tokio::spawn(serve(stream, peer, proxy.clone(), config.clone(), slot));
                }
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: back off briefly
                    // instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop_requested(&mut stopped) => return,
        }
    }
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    proxy: Arc<Proxy>,
    config: ListenerConfig,
    slot: Arc<ConnectionSlot>,
) {
    let _ = stream.set_nodelay(true);
    let mut drain = proxy.drain.clone();
    let service = service_fn(move |req| proxy.clone().handle(req, peer, slot.clone()));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(config.handshake_timeout)
        .max_header_size(config.max_request_head_size)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = drain.started() => {
            // The request in flight (if any) finishes; then the connection closes.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "client connection ended with an error");
    }
}

/// Resolves once `stop` was called (or the `Running` handle dropped).
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    while !*stopped.borrow_and_update() {
        if stopped.changed().await.is_err() {
            return;
        }
    }
}
