//! A running wsgate: `start` binds every listener and the admin listener; `Running` reports the bound
//! addresses and offers `reload` (SIGHUP) and `drain` (SIGTERM). This is the library entry point the
//! binary and the tests use.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::access::{Access, Policy};
use crate::admin::{self, Admin};
use crate::config::{Config, ConfigError, ListenerConfig};
use crate::drain::{DrainPlan, DrainSignal, Live, SPREAD_SHARE};
use crate::listener::{accept_loop, ListenerSettings, SharedProxy};
use crate::metrics::names::{RELOAD_FAILURE, RELOAD_SUCCESS};
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::sessions::Registry;

pub use crate::listener::ConnectionSlot;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listener {name:?}: cannot bind {addr}: {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("listener {name:?}: TLS: {source}")]
    Tls {
        name: String,
        #[source]
        source: crate::tls::TlsError,
    },
    #[error("upstream {name:?}: TLS: {source}")]
    UpstreamTls {
        name: String,
        #[source]
        source: crate::tls::TlsError,
    },
    /// A route's JWT keys or auth service could not be set up (a key file changed since `check`).
    #[error("route {route:?}: auth: {message}")]
    Auth { route: String, message: String },
    #[error(transparent)]
    AdminToken(#[from] admin::access::TokenError),
}

/// Why a reload was refused; the old configuration stays in force.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Bind(#[from] StartError),
}

/// A started wsgate.
pub struct Running {
    metrics: Metrics,
    proxy: SharedProxy,
    state: Mutex<State>,
    admin: Option<SocketAddr>,
    admin_task: Option<JoinHandle<()>>,
    /// The admin API's token and options, replaced on reload.
    admin_access: Option<Arc<Access>>,
    drain: watch::Sender<Option<DrainPlan>>,
    signal: DrainSignal,
    live: Arc<Live>,
}

/// What a reload replaces.
struct State {
    config: Config,
    listeners: Vec<ListenerHandle>,
}

struct ListenerHandle {
    /// The configured address: a listener is kept across reloads when it is unchanged.
    bind: SocketAddr,
    /// The address actually bound (differs for port 0).
    addr: SocketAddr,
    name: String,
    settings: watch::Sender<Arc<ListenerSettings>>,
    task: JoinHandle<()>,
}

fn settings(config: &ListenerConfig) -> Result<Arc<ListenerSettings>, StartError> {
    ListenerSettings::new(config)
        .map(Arc::new)
        .map_err(|source| StartError::Tls {
            name: config.name.clone(),
            source,
        })
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Connections still open at the deadline (dropped when the process exits).
    pub left_open: usize,
}

impl Running {
    /// Every listener's name and bound address, in config order.
    pub fn listeners(&self) -> Vec<(String, SocketAddr)> {
        let state = self.state.lock().expect("state lock");
        state
            .listeners
            .iter()
            .map(|l| (l.name.clone(), l.addr))
            .collect()
    }

    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        let state = self.state.lock().expect("state lock");
        state
            .listeners
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.addr)
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The Prometheus text this instance serves on `/metrics`.
    pub fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    /// Open connections: HTTP client connections and WebSocket tunnels.
    pub fn live_connections(&self) -> usize {
        self.live.count()
    }

    /// Stops accepting new connections; open connections run on until they end.
    pub fn stop(&self) {
        let state = self.state.lock().expect("state lock");
        for listener in &state.listeners {
            listener.task.abort();
        }
    }

    /// Re-reads `path` and applies it (SIGHUP). On any error the old configuration stays.
    pub async fn reload_file(&self, path: &Path) -> Result<(), ReloadError> {
        match Config::load(path) {
            Ok(config) => self.reload(config).await,
            Err(e) => {
                self.metrics.config_reload(RELOAD_FAILURE);
                Err(e.into())
            }
        }
    }

    /// Applies a validated configuration: routes and upstreams are swapped atomically for new
    /// requests; open tunnels keep running untouched; listeners are added, changed and removed (a bind
    /// failure keeps the whole old configuration). The admin listener is not rebound.
    pub async fn reload(&self, config: Config) -> Result<(), ReloadError> {
        let result = self.apply(config).await;
        self.metrics.config_reload(match result {
            Ok(()) => RELOAD_SUCCESS,
            Err(_) => RELOAD_FAILURE,
        });
        result
    }

    async fn apply(&self, config: Config) -> Result<(), ReloadError> {
        // Bind what is new before touching anything, so a failure changes nothing.
        let kept: Vec<Option<usize>> = {
            let state = self.state.lock().expect("state lock");
            config
                .listeners
                .iter()
                .map(|l| {
                    state
                        .listeners
                        .iter()
                        .position(|h| h.bind == l.bind && (l.bind.port() != 0 || h.name == l.name))
                })
                .collect()
        };
        // Certificates are read again: a reload also rotates them.
        let all_settings = config
            .listeners
            .iter()
            .map(settings)
            .collect::<Result<Vec<_>, _>>()?;
        let mut fresh = Vec::new();
        for (listener, kept) in config.listeners.iter().zip(&kept) {
            if kept.is_none() {
                fresh.push(bind(&listener.name, listener.bind).await?);
            }
        }

        // Read before anything changes: a token file that cannot be read keeps the old config.
        let admin_policy = match (&config.admin, &self.admin_access) {
            (Some(admin), Some(_)) => Some(Policy::load(admin).map_err(StartError::from)?),
            _ => None,
        };
        let previous = self.proxy.load_full();
        let next = Proxy::new(
            &config,
            self.metrics.clone(),
            self.signal.clone(),
            self.live.clone(),
            previous.sessions.clone(),
            Some(&previous),
        )?;
        self.metrics.preset(&config);
        self.proxy.store(Arc::new(next));

        let mut state = self.state.lock().expect("state lock");
        let mut old: Vec<Option<ListenerHandle>> = std::mem::take(&mut state.listeners)
            .into_iter()
            .map(Some)
            .collect();
        let mut fresh = fresh.into_iter();
        for ((listener, kept), settings) in config.listeners.iter().zip(kept).zip(all_settings) {
            let handle = match kept.and_then(|i| old[i].take()) {
                Some(handle) => {
                    let _ = handle.settings.send(settings);
                    ListenerHandle {
                        name: listener.name.clone(),
                        ..handle
                    }
                }
                None => {
                    let socket = fresh.next().expect("bound above");
                    self.spawn_listener(socket, settings)
                }
            };
            state.listeners.push(handle);
        }
        for removed in old.into_iter().flatten() {
            tracing::info!(listener = %removed.name, addr = %removed.addr, "listener removed");
            removed.task.abort();
        }
        if config.admin.as_ref().map(|a| a.bind) != state.config.admin.as_ref().map(|a| a.bind) {
            tracing::warn!("admin listener changes take effect on restart");
        }
        if let (Some(policy), Some(access)) = (admin_policy, &self.admin_access) {
            access.replace(policy);
        }
        log_warnings(&config);
        state.config = config;
        tracing::info!("configuration reloaded");
        Ok(())
    }

    fn spawn_listener(
        &self,
        socket: TcpListener,
        settings: Arc<ListenerSettings>,
    ) -> ListenerHandle {
        let config = &settings.config;
        let addr = socket.local_addr().unwrap_or(config.bind);
        tracing::info!(listener = %config.name, %addr, tls = settings.tls.is_some(), "listening");
        let (bind, name) = (config.bind, config.name.clone());
        let (sender, watched) = watch::channel(settings);
        ListenerHandle {
            bind,
            addr,
            name,
            settings: sender,
            task: tokio::spawn(accept_loop(socket, self.proxy.clone(), watched)),
        }
    }

    /// Graceful shutdown (SIGTERM): stop accepting, answer `/readyz` with 503, let HTTP requests in
    /// flight finish, and send every tunnel's client a close frame (`shutdown.close_code`) at a random
    /// moment of the first 80% of `drain_timeout`, between frames. Resolves when every connection is
    /// done or at the deadline.
    pub async fn drain(&self) -> DrainReport {
        let shutdown = self.state.lock().expect("state lock").config.shutdown;
        let window = shutdown.drain_timeout;
        let started = tokio::time::Instant::now();
        self.stop();
        let _ = self.drain.send(Some(DrainPlan {
            started,
            spread: window.mul_f64(SPREAD_SHARE),
            close_code: shutdown.close_code,
        }));
        tracing::info!(connections = self.live.count(), ?window, "draining");
        let _ = tokio::time::timeout_at(started + window, self.live.idle()).await;
        let left_open = self.live.count();
        self.live.abandon();
        tracing::info!(left_open, elapsed = ?started.elapsed(), "drained");
        DrainReport { left_open }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
        if let Some(admin) = &self.admin_task {
            admin.abort();
        }
    }
}

/// Binds every listener (and the admin listener), then serves in background tasks.
pub async fn start(config: Config) -> Result<Running, StartError> {
    log_warnings(&config);
    let metrics = Metrics::new();
    let (drain, signal) = DrainSignal::channel();
    let live = Arc::new(Live::default());
    let sessions = Arc::new(Registry::default());
    let proxy = Arc::new(ArcSwap::from_pointee(Proxy::new(
        &config,
        metrics.clone(),
        signal.clone(),
        live.clone(),
        sessions.clone(),
        None,
    )?));
    metrics.preset(&config);

    let mut sockets = Vec::new();
    for listener in &config.listeners {
        let settings = settings(listener)?;
        sockets.push((bind(&listener.name, listener.bind).await?, settings));
    }
    let (admin, admin_task, admin_access) = match &config.admin {
        Some(cfg) => {
            let access = Arc::new(Access::new(Policy::load(cfg)?, cfg.bind.ip().is_loopback()));
            let socket = bind("admin", cfg.bind).await?;
            let addr = socket.local_addr().unwrap_or(cfg.bind);
            tracing::info!(%addr, "admin listening (/metrics, /healthz, /readyz, /tunnels, /)");
            let state = Arc::new(Admin {
                metrics: metrics.clone(),
                drain: signal.clone(),
                sessions,
                access: access.clone(),
            });
            let task = tokio::spawn(admin::serve(socket, state));
            (Some(addr), Some(task), Some(access))
        }
        None => (None, None, None),
    };

    let running = Running {
        metrics,
        proxy,
        state: Mutex::new(State {
            config: config.clone(),
            listeners: Vec::new(),
        }),
        admin,
        admin_task,
        admin_access,
        drain,
        signal,
        live,
    };
    let handles: Vec<ListenerHandle> = sockets
        .into_iter()
        .map(|(socket, settings)| running.spawn_listener(socket, settings))
        .collect();
    running.state.lock().expect("state lock").listeners = handles;
    Ok(running)
}

/// The same lines `wsgate check` prints, so a config that passed with warnings says so in the log too.
fn log_warnings(config: &Config) {
    for warning in &config.warnings {
        tracing::warn!(path = %warning.path, "config warning: {warning}");
    }
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
