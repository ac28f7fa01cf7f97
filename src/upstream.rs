//! Upstream endpoints: round-robin choice, TCP connects with a timeout, and the pooled HTTP client.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpStream;

use crate::config::UpstreamConfig;

/// Why a connection to an endpoint could not be made; decides 502 versus 504.
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
}

pub struct Upstream {
    pub name: String,
    /// What it was built from: a reload keeps an upstream whose config is unchanged.
    pub config: UpstreamConfig,
    endpoints: Vec<String>,
    next: AtomicUsize,
    connect_timeout: Duration,
    /// Pooled keep-alive connections for plain HTTP, keyed by endpoint.
    pub http: Client<HttpConnector, Incoming>,
}

impl Upstream {
    pub fn new(cfg: &UpstreamConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(cfg.connect_timeout));
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Upstream {
            config: cfg.clone(),
            name: cfg.name.clone(),
            endpoints: cfg.endpoints.clone(),
            next: AtomicUsize::new(0),
            connect_timeout: cfg.connect_timeout,
            http,
        }
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Round robin over the configured endpoints.
    pub fn pick(&self) -> &str {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.endpoints.len();
        &self.endpoints[i]
    }

    /// A fresh TCP connection (WebSocket tunnels are never pooled).
    pub async fn connect(&self, endpoint: &str) -> Result<TcpStream, ConnectError> {
        match tokio::time::timeout(self.connect_timeout, TcpStream::connect(endpoint)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(source)) => Err(ConnectError::Failed {
                endpoint: endpoint.to_owned(),
                source,
            }),
            Err(_) => Err(ConnectError::Timeout {
                endpoint: endpoint.to_owned(),
                timeout: self.connect_timeout,
            }),
        }
    }
}
