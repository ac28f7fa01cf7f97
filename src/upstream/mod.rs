//! Upstreams: the upstream itself (its endpoints, dialer, pooled client and health task), with the
//! choice of endpoint (`selection`, `balance`, `sticky`), connects retried across endpoints
//! (`connect`, over `dial`: TCP, then the upstream's TLS), health and the pooled HTTP client.

pub mod balance;
mod client;
mod connect;
mod dial;
pub mod endpoint;
mod error;
mod health;
mod selection;
pub mod sticky;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use crate::config::UpstreamConfig;
use crate::metrics::Metrics;
use crate::tls::TlsError;
use dial::Dialer;
use endpoint::Endpoint;
use sticky::Sticky;

pub use client::{PooledClient, UpstreamBody};
pub use connect::{Attempt, Retry};
pub use dial::UpstreamStream;
pub use error::{ConnectError, Side};
pub use selection::Selection;

pub struct Upstream {
    /// Shared with its tunnels' entries in `/tunnels`.
    pub name: Arc<str>,
    /// What it was built from: a reload keeps an upstream whose config is unchanged.
    pub config: UpstreamConfig,
    endpoints: Vec<Arc<Endpoint>>,
    turn: AtomicUsize,
    metrics: Metrics,
    /// Pooled keep-alive connections for plain HTTP, keyed by endpoint.
    pub http: PooledClient,
    /// `https` or `http`, for the pooled client's URIs.
    pub scheme: &'static str,
    /// Tunnels and health probes connect through it alike.
    dialer: Arc<Dialer>,
    health: Option<JoinHandle<()>>,
    sticky: Option<Sticky>,
}

impl Upstream {
    pub fn new(cfg: &UpstreamConfig, metrics: &Metrics) -> Result<Self, TlsError> {
        let client_config = match &cfg.tls {
            Some(tls) => crate::tls::client_config(tls)?,
            None => crate::tls::plain_client_config()?,
        };
        let server_name = match cfg.tls.as_ref().and_then(|t| t.server_name.clone()) {
            Some(name) => Some(
                ServerName::try_from(name)
                    .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?,
            ),
            None => None,
        };
        let http = client::pooled(cfg, &client_config, server_name.as_ref());
        let endpoints: Vec<Arc<Endpoint>> = cfg
            .endpoints
            .iter()
            .map(|addr| {
                let (up, tunnels) = metrics.endpoint_gauges(&cfg.name, addr);
                Arc::new(Endpoint::new(addr, up, tunnels))
            })
            .collect();
        let dialer = Arc::new(match &cfg.tls {
            Some(tls) => Dialer::tls(
                TlsConnector::from(client_config),
                server_name,
                tls.server_name.clone(),
            ),
            None => Dialer::plain(),
        });
        let health = cfg.health.clone().map(|check| {
            tokio::spawn(health::run(
                cfg.name.clone(),
                endpoints.clone(),
                dialer.clone(),
                check,
            ))
        });
        Ok(Upstream {
            name: cfg.name.as_str().into(),
            config: cfg.clone(),
            endpoints,
            turn: AtomicUsize::new(0),
            metrics: metrics.clone(),
            http,
            scheme: if cfg.tls.is_some() { "https" } else { "http" },
            dialer,
            health,
            sticky: cfg
                .sticky_cookie
                .as_ref()
                .map(|c| Sticky::new(c, &cfg.name, &cfg.endpoints)),
        })
    }

    pub fn connect_timeout(&self) -> Duration {
        self.config.connect_timeout
    }

    pub fn response_timeout(&self) -> Duration {
        self.config.response_timeout
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(health) = &self.health {
            health.abort();
        }
    }
}
