//! Connection slots: every accepted connection counts toward the process's live connections (what a
//! drain waits for) and toward its listener's `max_connections`; past that limit it gets a 503.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::TcpStream;

use super::ListenerSettings;
use crate::config::ListenerConfig;
use crate::drain::{Live, LiveGuard};
use crate::proxy::{Clients, PendingTunnel, Proxy};

/// Past `max_connections` a new connection gets this and is closed (as Envoy does; clients retry).
const OVER_CAPACITY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n";

/// Holds a connection's places in the live counts (all connections, and its listener's) for as long as
/// the HTTP connection or the tunnel it became lives.
pub struct ConnectionSlot {
    _all: LiveGuard,
    _listener: LiveGuard,
    /// `https` on a TLS listener, else `http` (for X-Forwarded-Proto).
    pub proto: &'static str,
    /// The listener's per-client limits, if it has any.
    pub clients: Option<Clients>,
    /// The listener's name.
    pub listener: Arc<str>,
    /// The tunnel an upgrade on this connection became, run by the connection's own task once hyper
    /// has written the 101 (one task per session, not a second one spawned for the tunnel).
    /// Boxed: the slot lives as long as the connection, the pending tunnel only until the 101.
    tunnel: Mutex<Option<Box<PendingTunnel>>>,
}

impl ConnectionSlot {
    pub(crate) fn set_tunnel(&self, tunnel: PendingTunnel) {
        *self.tunnel.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(tunnel));
    }

    pub(super) fn take_tunnel(&self) -> Option<Box<PendingTunnel>> {
        self.tunnel
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// One listener's open connections and its table of client addresses; kept across reloads of its
/// options.
#[derive(Default)]
pub(super) struct Slots {
    open: Arc<Live>,
    clients: Mutex<Option<Clients>>,
}

impl Slots {
    /// The listener's limits as configured now, on the table it has had since it last changed size.
    fn clients(&self, config: &ListenerConfig) -> Option<Clients> {
        let limits = config.client_limits?;
        let mut current = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_none_or(|c| c.limits != limits) {
            *current = Some(Clients::new(limits, current.as_ref()));
        }
        current.clone()
    }

    /// A slot for a freshly accepted connection, or `None` when the listener is at
    /// `max_connections`: then the client has been sent the 503 and the connection is dropped.
    pub(super) fn admit(
        &self,
        stream: &TcpStream,
        peer: SocketAddr,
        settings: &ListenerSettings,
        proxy: &Proxy,
        tls: bool,
    ) -> Option<Arc<ConnectionSlot>> {
        let config = &settings.config;
        let listener = match config.max_connections {
            Some(max) => self.open.try_enter(max),
            None => Some(self.open.enter()),
        };
        let Some(listener) = listener else {
            proxy.metrics.connection_rejected(&config.name);
            tracing::debug!(listener = %config.name, %peer, "max_connections reached: 503");
            let _ = stream.try_write(OVER_CAPACITY);
            return None;
        };
        Some(Arc::new(ConnectionSlot {
            _all: proxy.live.enter(),
            _listener: listener,
            proto: if tls { "https" } else { "http" },
            clients: self.clients(config),
            listener: settings.name.clone(),
            tunnel: Mutex::new(None),
        }))
    }
}
