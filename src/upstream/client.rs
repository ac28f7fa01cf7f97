//! The upstream's pooled HTTP client: keep-alive connections per endpoint for plain HTTP requests,
//! through the same TLS settings as tunnels.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::ServerName;

use crate::config::UpstreamConfig;

/// Request bodies toward upstreams (boxed, so that a bodyless request can be rebuilt for a retry).
pub type UpstreamBody = BoxBody<Bytes, hyper::Error>;

/// Pooled keep-alive connections for plain HTTP, keyed by endpoint.
pub type PooledClient = Client<HttpsConnector<HttpConnector>, UpstreamBody>;

/// The client for `cfg`: its connect timeout, `tls` (without ALPN, which hyper-rustls sets) and
/// `server_name` when configured.
pub(super) fn pooled(
    cfg: &UpstreamConfig,
    tls: &rustls::ClientConfig,
    server_name: Option<&ServerName<'static>>,
) -> PooledClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(cfg.connect_timeout));
    connector.set_nodelay(true);
    // Endpoint names are resolved at each new connection: DNS changes apply without a reload.
    connector.enforce_http(false);
    // hyper-rustls sets ALPN from enable_http1 and panics if the config already has some.
    let mut tls = tls.clone();
    tls.alpn_protocols.clear();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    let https = match server_name {
        Some(name) => https
            .with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name.clone())),
        None => https,
    };
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(https.enable_http1().wrap_connector(connector))
}
