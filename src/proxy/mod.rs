//! Request handling: route the request, then either proxy it as HTTP or negotiate a WebSocket tunnel.

mod error;
mod headers;
mod http_forward;
mod upgrade;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

pub use error::ProxyError;

use crate::config::{Config, RouteConfig};
use crate::drain::{DrainSignal, Live};
use crate::metrics::{names, Metrics, RouteMetrics};
use crate::proto::handshake::is_websocket_upgrade;
use crate::routing::Router;
use crate::server::{ConnectionSlot, StartError};
use crate::upstream::Upstream;

pub type Body = BoxBody<Bytes, hyper::Error>;

/// Which endpoint served a response: set by the forwarding code, read by the access log.
#[derive(Debug, Clone)]
pub(crate) struct ServedBy(pub String);

/// A route with its upstream and metric handles resolved.
pub struct Route {
    pub config: RouteConfig,
    pub upstream: Arc<Upstream>,
    pub metrics: Arc<RouteMetrics>,
    /// Open tunnels, for `websocket.max_connections`.
    pub tunnels: Arc<Live>,
}

/// Everything a request needs, built once from a validated config.
pub struct Proxy {
    router: Router,
    routes: Vec<Route>,
    pub metrics: Metrics,
    /// Tunnels watch it to close on shutdown.
    pub drain: DrainSignal,
    /// Counts live connections.
    pub live: Arc<Live>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Proxy {
    /// Builds a generation from `config`. With the `previous` generation, unchanged upstreams (their
    /// pools and rotation) and each route's tunnel count (by route name) carry over.
    pub fn new(
        config: &Config,
        metrics: Metrics,
        drain: DrainSignal,
        live: Arc<Live>,
        previous: Option<&Proxy>,
    ) -> Result<Self, StartError> {
        let upstreams = config
            .upstreams
            .iter()
            .map(|u| {
                let kept = previous.and_then(|p| p.routes.iter().find(|r| r.upstream.config == *u));
                match kept {
                    Some(route) => Ok(route.upstream.clone()),
                    None => Upstream::new(u, &metrics).map(Arc::new).map_err(|source| {
                        StartError::UpstreamTls {
                            name: u.name.clone(),
                            source,
                        }
                    }),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let routes = config
            .routes
            .iter()
            .map(|r| Route {
                config: r.clone(),
                upstream: upstreams[r.upstream].clone(),
                metrics: metrics.route(&r.name),
                tunnels: previous
                    .and_then(|p| p.routes.iter().find(|old| old.config.name == r.name))
                    .map_or_else(Arc::default, |old| old.tunnels.clone()),
            })
            .collect();
        Ok(Proxy {
            router: Router::new(config),
            routes,
            metrics,
            drain,
            live,
            trusted_proxies: config.trusted_proxies.clone(),
        })
    }

    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
        slot: Arc<ConnectionSlot>,
    ) -> Result<Response<Body>, Infallible> {
        let received = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().host());
        let route = self
            .router
            .route(host, req.uri().path())
            .map(|i| &self.routes[i]);
        let mut response = if is_websocket_upgrade(req.version(), req.headers()) {
            upgrade::handle(&self, route, req, peer, received, slot).await
        } else {
            http_forward::forward(&self, route, req, peer, slot.proto).await
        };
        let label = route.map_or(names::NO_ROUTE, |r| r.metrics.route.as_str());
        let elapsed = received.elapsed();
        self.metrics.http_request(label, &method, response.status());
        if let Some(route) = route {
            route.metrics.http_duration.observe(elapsed.as_secs_f64());
        }
        let endpoint = response.extensions_mut().remove::<ServedBy>();
        tracing::info!(
            target: "wsgate::access",
            kind = "http",
            route = label,
            %peer,
            method = %method,
            path = %path,
            status = response.status().as_u16(),
            endpoint = endpoint.as_ref().map_or("-", |e| e.0.as_str()),
            duration_ms = elapsed.as_millis() as u64,
            "http request"
        );
        Ok(response)
    }
}

/// A short plain-text answer of wsgate's own.
pub fn error_response(status: StatusCode, headers: http::HeaderMap) -> Response<Body> {
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut response = Response::new(
        Full::new(Bytes::from(text))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().extend(headers);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
