//! Request handling: route the request, then either proxy it as HTTP or negotiate a WebSocket tunnel.

mod access;
mod backend;
mod error;
/// Reached by `auth::forward` too, for the hop-by-hop headers of a relayed denial.
pub(crate) mod headers;
mod http2;
mod http_forward;
mod tunnel;
mod upgrade;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

pub use access::Clients;
pub use error::ProxyError;
pub use tunnel::PendingTunnel;

use crate::config::{Config, RouteConfig};
use crate::drain::{DrainSignal, Live};
use crate::metrics::{names, Metrics, RouteMetrics, Transport};
use crate::routing::Router;
use crate::server::{ConnectionSlot, StartError};
use crate::sessions::Registry;
use crate::upstream::endpoint::Endpoint;
use crate::upstream::Upstream;
use wsgate_proto::handshake::is_websocket_upgrade;

/// A response body toward the client: the upstream's (pooled or from an upgrade connection) or
/// wsgate's own.
pub type Body = BoxBody<Bytes, BoxError>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response and the endpoint that answered it, if one did (for the access log).
pub(crate) type Served = (Response<Body>, Option<Arc<Endpoint>>);

/// A route with its upstream and metric handles resolved.
pub struct Route {
    pub config: RouteConfig,
    pub upstream: Arc<Upstream>,
    pub metrics: Arc<RouteMetrics>,
    /// Open tunnels, for `websocket.max_connections`.
    pub tunnels: Arc<Live>,
    /// JWT, forward auth and per-client limits.
    pub access: access::RouteAccess,
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
    /// The live tunnels, for the admin API; one for the process, across reloads.
    pub sessions: Arc<Registry>,
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
        sessions: Arc<Registry>,
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
            .map(|r| {
                let old =
                    previous.and_then(|p| p.routes.iter().find(|old| old.config.name == r.name));
                Ok(Route {
                    config: r.clone(),
                    upstream: upstreams[r.upstream].clone(),
                    metrics: metrics.route(&r.name),
                    tunnels: old.map_or_else(Arc::default, |old| old.tunnels.clone()),
                    access: access::RouteAccess::new(r, old.map(|old| &old.access))?,
                })
            })
            .collect::<Result<_, StartError>>()?;
        Ok(Proxy {
            router: Router::new(config),
            routes,
            metrics,
            drain,
            live,
            sessions,
            trusted_proxies: config.trusted_proxies.clone(),
        })
    }

    pub async fn handle(
        self: Arc<Self>,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        slot: Arc<ConnectionSlot>,
        transport: Transport,
    ) -> Result<Response<Body>, Infallible> {
        let received = Instant::now();
        let websocket = match transport {
            Transport::H1 => is_websocket_upgrade(req.version(), req.headers()),
            Transport::H2 => {
                http2::as_http1_headers(&mut req);
                match http2::connect_protocol(&req) {
                    http2::Connect::WebSocket => true,
                    http2::Connect::None => false,
                    http2::Connect::Unknown => return Ok(http2::unknown_protocol()),
                }
            }
        };
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
        // Armed before the first await: if the client goes away, hyper drops this future (and with
        // it the upstream request, which cancels it) and the record logs 499 as it drops.
        let mut record = Record {
            proxy: &self,
            route,
            transport,
            method,
            path,
            peer,
            received,
            trying: Trying::default(),
            done: false,
        };
        let trying = &record.trying;
        let (response, endpoint) = if websocket {
            let up = upgrade::Upgrade {
                proxy: &self,
                route,
                peer,
                received,
                slot,
                transport,
            };
            upgrade::handle(up, req, trying).await
        } else {
            http_forward::forward(&self, route, req, peer, slot.proto, trying).await
        };
        // A 499 answered here (the client left inside its body) names the endpoint, as one dropped.
        let waited = (response.status() == client_closed()).then(|| record.trying.get());
        let endpoint = endpoint.or_else(|| waited.flatten());
        record.finish(response.status(), endpoint.as_ref().map(|e| &*e.addr));
        Ok(response)
    }
}

/// nginx's "client closed request": the client left before wsgate had a response head for it.
fn client_closed() -> StatusCode {
    StatusCode::from_u16(499).expect("499 is in 100..=999")
}

/// The endpoint a request is waiting on, so that a 499 names it (nginx's `$upstream_addr`). Set once
/// per attempt, never per frame.
#[derive(Default)]
pub(crate) struct Trying(Mutex<Option<Arc<Endpoint>>>);

impl Trying {
    pub(crate) fn set(&self, endpoint: &Arc<Endpoint>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(endpoint.clone());
    }

    fn get(&self) -> Option<Arc<Endpoint>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// One request's access-log event, `http_requests_total` and duration, recorded exactly once: with
/// the response status, or as 499 (with the endpoint it was waiting on) when the request is dropped
/// unanswered. A client that leaves while the body streams is logged with the status it was sent (as
/// nginx does), since the head went out.
struct Record<'a> {
    proxy: &'a Proxy,
    route: Option<&'a Route>,
    transport: Transport,
    method: http::Method,
    path: String,
    peer: SocketAddr,
    received: Instant,
    trying: Trying,
    done: bool,
}

impl Record<'_> {
    fn finish(&mut self, status: StatusCode, endpoint: Option<&str>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let label = self.route.map_or(names::NO_ROUTE, |r| &*r.metrics.route);
        let elapsed = self.received.elapsed();
        match self.route {
            Some(route) => {
                route
                    .metrics
                    .http_request(&self.method, status, self.transport);
                route.metrics.http_duration.observe(elapsed.as_secs_f64());
            }
            None => self
                .proxy
                .metrics
                .http_request(label, &self.method, status, self.transport),
        }
        tracing::info!(
            target: "wsgate::access",
            kind = "http",
            route = label,
            protocol = self.transport.protocol_label(),
            peer = %self.peer,
            method = %self.method,
            path = %self.path,
            status = status.as_u16(),
            endpoint = endpoint.unwrap_or("-"),
            duration_ms = elapsed.as_millis() as u64,
            "http request"
        );
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        // Dropped by the exit after a drain deadline, not by the client: counted in `left_open`.
        if self.done || self.proxy.live.is_abandoned() {
            return;
        }
        let endpoint = self.trying.get();
        self.finish(client_closed(), endpoint.as_ref().map(|e| &*e.addr));
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
