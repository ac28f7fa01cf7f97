//! The WebSocket leg of a request: validate the client's upgrade, connect to the upstream, forward the
//! request, validate its 101, and only then hand both raw TCP streams to the relay.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::headers::{add_forwarded, remove_hop_by_hop};
use super::{error_response, Body, Proxy, ProxyError, Route, ServedBy, Trying};
use crate::drain::{DrainSignal, LiveGuard};
use crate::metrics::names;
use crate::relay::{self, TunnelParams, CLOSE_GRACE};
use crate::server::ConnectionSlot;
use crate::upstream::endpoint::TunnelGuard;
use crate::upstream::UpstreamStream;
use wsgate_proto::deflate::Agreed;
use wsgate_proto::handshake::{
    client_response_headers, prepare_backend_headers, validate_request, validate_response,
    ClientOffer, Negotiated, RequestPolicy,
};
use wsgate_proto::tracker::{Limits, Sender};

/// What the upstream made of the forwarded upgrade request.
enum Outcome {
    /// A valid 101: the client gets `response`, and the tunnel starts once both sides have upgraded.
    Tunnel {
        response: Response<Body>,
        client: OnUpgrade,
        upstream: OnUpgrade,
        /// The tunnel's place under the route's `max_connections`, and on its endpoint's count.
        place: (LiveGuard, TunnelGuard),
        endpoint: String,
        deflate: Option<Agreed>,
    },
    /// Anything but 101 is relayed as a plain HTTP response: never a tunnel.
    Refused(Response<Body>),
}

pub async fn handle(
    proxy: &Proxy,
    route: Option<&Route>,
    req: Request<Incoming>,
    peer: SocketAddr,
    received: Instant,
    slot: Arc<ConnectionSlot>,
    trying: &Trying,
) -> Response<Body> {
    let label = route.map_or(names::NO_ROUTE, |r| r.metrics.route.as_str());
    match negotiate(proxy, route, req, peer, slot.proto, trying).await {
        Ok(Outcome::Tunnel {
            response,
            client,
            upstream,
            place,
            endpoint,
            deflate,
        }) => {
            let route = route.expect("a tunnel has a route");
            proxy.metrics.handshake(label, "ok");
            route
                .metrics
                .handshake_duration
                .observe(received.elapsed().as_secs_f64());
            let mut response = response;
            response.extensions_mut().insert(ServedBy(endpoint.clone()));
            let mut params = params(route, proxy.drain.clone(), peer, endpoint, deflate);
            // The client connection counts until the tunnel ends.
            params.held = Some(Box::new((slot, place)));
            tokio::spawn(tunnel(client, upstream, params));
            response
        }
        Ok(Outcome::Refused(response)) => {
            proxy.metrics.handshake(label, "upstream_rejected");
            response
        }
        Err(error) => {
            tracing::debug!(route = label, %peer, %error, "upgrade refused");
            proxy.metrics.handshake(label, error.handshake_result());
            error_response(error.status(), error.response_headers())
        }
    }
}

async fn negotiate(
    proxy: &Proxy,
    route: Option<&Route>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    proto: &'static str,
    trying: &Trying,
) -> Result<Outcome, ProxyError> {
    let route = route.ok_or(ProxyError::NoRoute)?;
    let ws = &route.config.websocket;
    let policy = RequestPolicy {
        allowed_origins: ws.allowed_origins.as_deref(),
        subprotocols: ws.subprotocols.as_deref(),
        extensions: &ws.extensions,
    };
    let offer = validate_request(req.method(), req.version(), req.headers(), &policy)
        .map_err(ProxyError::ClientHandshake)?;
    let place = match ws.max_connections {
        Some(max) => route.tunnels.try_enter(max),
        None => Some(route.tunnels.enter()),
    }
    .ok_or(ProxyError::OverCapacity)?;

    let selection = route.upstream.select(req.headers(), peer);
    let (stream, chosen) = route.upstream.connect(&selection).await?;
    trying.set(&chosen);
    let endpoint = chosen.addr.as_str();
    // For the 101 and for a refusal alike: both came from this endpoint.
    let affinity = route
        .upstream
        .affinity_cookie(&selection, &chosen, proto == "https");

    let upstream_req = upstream_request(proxy, &req, &offer, peer, proto)?;
    let timeout = route.upstream.response_timeout();
    let mut response = match stream {
        UpstreamStream::Tcp(io) => send_upgrade(io, upstream_req, endpoint, timeout).await?,
        UpstreamStream::Tls(io) => send_upgrade(io, upstream_req, endpoint, timeout).await?,
    };

    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        if let Some(cookie) = affinity {
            parts.headers.append(http::header::SET_COOKIE, cookie);
        }
        return Ok(Outcome::Refused(Response::from_parts(parts, body.boxed())));
    }
    let negotiated =
        validate_response(response.headers(), &offer).map_err(ProxyError::UpstreamHandshake)?;

    Ok(Outcome::Tunnel {
        response: client_switch(response.headers(), &offer, &negotiated, affinity),
        client: hyper::upgrade::on(&mut req),
        upstream: hyper::upgrade::on(&mut response),
        place: (place, chosen.tunnel()),
        endpoint: endpoint.to_owned(),
        deflate: negotiated.deflate.map(|(agreed, _)| agreed),
    })
}

/// The upgrade request as the upstream gets it: HTTP/1.1, the client's end-to-end headers, the
/// offer as the route allows it, and X-Forwarded-*.
fn upstream_request(
    proxy: &Proxy,
    req: &Request<Incoming>,
    offer: &ClientOffer,
    peer: SocketAddr,
    proto: &'static str,
) -> Result<Request<Empty<Bytes>>, ProxyError> {
    let mut headers = req.headers().clone();
    remove_hop_by_hop(&mut headers);
    prepare_backend_headers(&mut headers, offer);
    add_forwarded(&mut headers, peer, proto, &proxy.trusted_proxies);
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut upstream_req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .version(Version::HTTP_11)
        .body(Empty::<Bytes>::new())
        .map_err(ProxyError::BuildRequest)?;
    *upstream_req.headers_mut() = headers;
    Ok(upstream_req)
}

/// The client's 101: end-to-end headers of the upstream's (cookies, for one) reach the client; the
/// upgrade headers are wsgate's own.
fn client_switch(
    upstream: &HeaderMap,
    offer: &ClientOffer,
    negotiated: &Negotiated,
    affinity: Option<http::HeaderValue>,
) -> Response<Body> {
    let mut headers = upstream.clone();
    remove_hop_by_hop(&mut headers);
    strip_websocket_headers(&mut headers);
    headers.extend(client_response_headers(offer, negotiated));
    // Appended after the backend's own cookies, which stay.
    if let Some(cookie) = affinity {
        headers.append(http::header::SET_COOKIE, cookie);
    }
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *response.headers_mut() = headers;
    response
}

/// Sends the upgrade request on a fresh connection and waits for the response head.
async fn send_upgrade<I>(
    io: I,
    request: Request<Empty<Bytes>>,
    endpoint: &str,
    timeout: std::time::Duration,
) -> Result<Response<Incoming>, ProxyError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let upstream_error = |source| ProxyError::UpstreamUpgrade {
        endpoint: endpoint.to_owned(),
        source,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(upstream_error)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upstream handshake connection ended");
        }
    });
    tokio::time::timeout(timeout, sender.send_request(request))
        .await
        .map_err(|_| ProxyError::ResponseTimeout {
            endpoint: endpoint.to_owned(),
            timeout,
        })?
        .map_err(upstream_error)
}

fn strip_websocket_headers(headers: &mut HeaderMap) {
    let names: Vec<_> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("sec-websocket-"))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

fn params(
    route: &Route,
    drain: DrainSignal,
    peer: SocketAddr,
    endpoint: String,
    deflate: Option<Agreed>,
) -> TunnelParams {
    let ws = &route.config.websocket;
    let limits = |sender: Sender| Limits {
        max_frame_size: ws.max_frame_size,
        max_message_size: ws.max_message_size,
        validate_utf8: ws.validate_utf8,
        answer_pings: sender == Sender::Client && ws.ping == crate::config::PingMode::Answer,
        // Each side compresses with its own context-takeover setting (RFC 7692 §7.1.1).
        compression: deflate.map(|d| match sender {
            Sender::Client => d.client_no_context_takeover,
            Sender::Upstream => d.server_no_context_takeover,
        }),
        // rand's thread-local CSPRNG: unpredictable keys, no lock or syscall per frame.
        remask: (sender == Sender::Client && ws.remask)
            .then_some(rand::random::<[u8; 4]> as fn() -> [u8; 4]),
    };
    TunnelParams {
        client_limits: limits(Sender::Client),
        upstream_limits: limits(Sender::Upstream),
        metrics: Arc::clone(&route.metrics),
        close_grace: CLOSE_GRACE,
        drain,
        keepalive: ws.keepalive,
        idle_timeout: ws.idle_timeout,
        write_timeout: ws.write_timeout,
        peer,
        endpoint,
        held: None,
    }
}

/// Waits for both upgrades, then spawns the relay as a task of its own, sized for its pair of
/// stream types (one future for all four pairs would be as large as the largest).
async fn tunnel(client: OnUpgrade, upstream: OnUpgrade, params: TunnelParams) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade did not complete");
            return;
        }
    };
    let (Some(client), Some(upstream)) = (ClientIo::from(client), UpstreamIo::from(upstream))
    else {
        tracing::error!("upgraded connection of an unexpected type");
        return;
    };
    // One monomorphized relay per combination of plain and TLS legs, each spawned as a task of
    // its own, sized for its pair of streams rather than for the largest of the four.
    let _detached = match (client, upstream) {
        (ClientIo::Tcp(c, cp), UpstreamIo::Tcp(u, up)) => {
            tokio::spawn(relay::run(c, cp, u, up, params))
        }
        (ClientIo::Tcp(c, cp), UpstreamIo::Tls(u, up)) => {
            tokio::spawn(relay::run(c, cp, u, up, params))
        }
        (ClientIo::Tls(c, cp), UpstreamIo::Tcp(u, up)) => {
            tokio::spawn(relay::run(c, cp, u, up, params))
        }
        (ClientIo::Tls(c, cp), UpstreamIo::Tls(u, up)) => {
            tokio::spawn(relay::run(c, cp, u, up, params))
        }
    };
}

/// The client's stream back from hyper, with any bytes it had read past the HTTP head.
enum ClientIo {
    Tcp(TcpStream, Bytes),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>, Bytes),
}

impl ClientIo {
    fn from(upgraded: Upgraded) -> Option<Self> {
        match take::<TcpStream>(upgraded) {
            Ok((io, read)) => Some(ClientIo::Tcp(io, read)),
            Err(upgraded) => take::<tokio_rustls::server::TlsStream<TcpStream>>(upgraded)
                .ok()
                .map(|(io, read)| ClientIo::Tls(Box::new(io), read)),
        }
    }
}

/// The upstream's stream back from hyper's client connection.
enum UpstreamIo {
    Tcp(TcpStream, Bytes),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>, Bytes),
}

impl UpstreamIo {
    fn from(upgraded: Upgraded) -> Option<Self> {
        match take::<TcpStream>(upgraded) {
            Ok((io, read)) => Some(UpstreamIo::Tcp(io, read)),
            Err(upgraded) => take::<Box<tokio_rustls::client::TlsStream<TcpStream>>>(upgraded)
                .ok()
                .map(|(io, read)| UpstreamIo::Tls(io, read)),
        }
    }
}

/// The stream of type `T` inside an upgraded connection, and the bytes hyper read past the head.
fn take<T>(upgraded: Upgraded) -> Result<(T, Bytes), Upgraded>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    upgraded
        .downcast::<TokioIo<T>>()
        .map(|parts| (parts.io.into_inner(), parts.read_buf))
}
