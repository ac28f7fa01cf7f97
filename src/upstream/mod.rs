//! Upstreams: endpoint choice (`balance`), health (passive ejection, active checks), connects
//! (`dial`: TCP, then the upstream's TLS) retried on the next endpoint, and the pooled HTTP client.

pub mod balance;
mod dial;
pub mod endpoint;
mod health;
pub mod sticky;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body_util::combinators::BoxBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::ServerName;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use crate::config::{Balance, HashKey, UpstreamConfig};
use crate::metrics::Metrics;
use crate::tls::TlsError;
use balance::{choose, stable_hash, Candidate};
use dial::Dialer;
pub use dial::UpstreamStream;
use endpoint::Endpoint;
use sticky::Sticky;

/// What a request brings to the choice of endpoint: its hash key (`balance: hash`) and the endpoint
/// its affinity cookie names (`sticky_cookie`), which wins while it is eligible.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection {
    pub key: Option<u64>,
    pub pinned: Option<usize>,
}

/// Request bodies toward upstreams (boxed, so that a bodyless request can be rebuilt for a retry).
pub type UpstreamBody = BoxBody<Bytes, hyper::Error>;

/// Why no connection to the upstream could be made; decides 502, 503 or 504.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect to {endpoint} timed out after {timeout:?}")]
    Timeout { endpoint: String, timeout: Duration },
    #[error("connect to {endpoint} failed: {source}")]
    Failed {
        endpoint: String,
        #[source]
        source: io::Error,
    },
    #[error("TLS handshake with {endpoint} failed: {message}")]
    Tls { endpoint: String, message: String },
    #[error("every endpoint of upstream {upstream:?} is ejected or failing health checks")]
    NoHealthyEndpoint { upstream: String },
}

pub struct Upstream {
    pub name: String,
    /// What it was built from: a reload keeps an upstream whose config is unchanged.
    pub config: UpstreamConfig,
    endpoints: Vec<Arc<Endpoint>>,
    turn: AtomicUsize,
    metrics: Metrics,
    /// Pooled keep-alive connections for plain HTTP, keyed by endpoint.
    pub http: Client<HttpsConnector<HttpConnector>, UpstreamBody>,
    /// `https` or `http`, for the pooled client's URIs.
    pub scheme: &'static str,
    /// Tunnels and health probes connect through it alike.
    dialer: Arc<Dialer>,
    health: Option<JoinHandle<()>>,
    sticky: Option<Sticky>,
}

impl Upstream {
    pub fn new(cfg: &UpstreamConfig, metrics: &Metrics) -> Result<Self, TlsError> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(cfg.connect_timeout));
        connector.set_nodelay(true);
        // Endpoint names are resolved at each new connection: DNS changes apply without a reload.
        connector.enforce_http(false);
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
        // hyper-rustls sets ALPN from enable_http1 and panics if the config already has some.
        let mut pooled = (*client_config).clone();
        pooled.alpn_protocols.clear();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(pooled)
            .https_or_http();
        let https = match &server_name {
            Some(name) => https.with_server_name_resolver(
                hyper_rustls::FixedServerNameResolver::new(name.clone()),
            ),
            None => https,
        };
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https.enable_http1().wrap_connector(connector));
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
            name: cfg.name.clone(),
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

    /// How many endpoints one request may try.
    pub fn attempts(&self) -> usize {
        self.config.connect_attempts
    }

    /// How the request's headers and peer bear on the choice of endpoint.
    pub fn select(&self, headers: &HeaderMap, peer: std::net::SocketAddr) -> Selection {
        Selection {
            key: self.hash_key(headers, peer),
            pinned: self.sticky.as_ref().and_then(|s| s.pinned(headers)),
        }
    }

    /// The hash key of a request for `balance: hash` (`None` for other balancers, or when the request
    /// lacks the header or cookie: then the choice falls back to round robin).
    fn hash_key(&self, headers: &HeaderMap, peer: std::net::SocketAddr) -> Option<u64> {
        let Balance::Hash(key) = &self.config.balance else {
            return None;
        };
        match key {
            HashKey::ClientIp => Some(stable_hash(peer.ip())),
            HashKey::Header(name) => headers
                .get(name.as_str())
                .map(|v| stable_hash(v.as_bytes())),
            HashKey::Cookie(name) => sticky::cookies(headers)
                .find(|(k, _)| k == name)
                .map(|(_, v)| stable_hash(v)),
        }
    }

    /// An eligible endpoint that `tried` does not mark, or `None`: the pinned one if it is such,
    /// else the balancer's choice.
    pub fn pick(&self, selection: &Selection, tried: &[bool]) -> Option<Arc<Endpoint>> {
        let candidates: Vec<Candidate> = self
            .endpoints
            .iter()
            .zip(tried)
            .map(|(e, &tried)| Candidate {
                eligible: !tried && e.eligible(),
                tunnels: e.tunnels(),
                id: e.id,
            })
            .collect();
        if let Some(i) = selection.pinned.filter(|&i| candidates[i].eligible) {
            return Some(self.endpoints[i].clone());
        }
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        choose(&self.config.balance, &candidates, turn, selection.key)
            .map(|i| self.endpoints[i].clone())
    }

    /// The affinity cookie for a response from `endpoint`: `None` without `sticky_cookie`, or when
    /// the request's cookie already names it. `tls`: the client came over a TLS listener.
    pub fn affinity_cookie(
        &self,
        selection: &Selection,
        endpoint: &Endpoint,
        tls: bool,
    ) -> Option<HeaderValue> {
        let sticky = self.sticky.as_ref()?;
        let index = self.endpoints.iter().position(|e| e.id == endpoint.id)?;
        (selection.pinned != Some(index)).then(|| sticky.set_cookie(index, tls))
    }

    /// Marks `endpoint` as tried in `tried`.
    pub fn mark_tried(&self, endpoint: &Endpoint, tried: &mut [bool]) {
        if let Some(i) = self.endpoints.iter().position(|e| e.id == endpoint.id) {
            tried[i] = true;
        }
    }

    pub fn untried(&self) -> Vec<bool> {
        vec![false; self.endpoints.len()]
    }

    /// A failed connect: counted, and toward ejection.
    pub fn connect_failed(&self, endpoint: &Endpoint) {
        self.metrics
            .upstream_connect_error(&self.name, &endpoint.addr);
        endpoint.connect_failed(self.config.max_fails, self.config.fail_timeout);
    }

    /// A fresh TCP connection for a tunnel (never pooled), retried on the next eligible endpoint
    /// up to `connect_attempts` times, as nginx's proxy_next_upstream does before anything was sent.
    pub async fn connect(
        &self,
        selection: &Selection,
    ) -> Result<(UpstreamStream, Arc<Endpoint>), ConnectError> {
        let mut tried = self.untried();
        let mut last = None;
        for _ in 0..self.attempts() {
            let Some(endpoint) = self.pick(selection, &tried) else {
                break;
            };
            self.mark_tried(&endpoint, &mut tried);
            match self
                .dialer
                .connect(&endpoint.addr, self.config.connect_timeout)
                .await
            {
                Ok(stream) => {
                    endpoint.connect_succeeded();
                    return Ok((stream, endpoint));
                }
                Err(e) => {
                    tracing::debug!(upstream = %self.name, error = %e, "connect failed");
                    self.connect_failed(&endpoint);
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ConnectError::NoHealthyEndpoint {
            upstream: self.name.clone(),
        }))
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(health) = &self.health {
            health.abort();
        }
    }
}
