//! The WebSocket leg of a request: validate the client's upgrade, connect to the upstream, send it
//! the request by hand (`backend.rs`), validate its 101, and then run the tunnel in one task that
//! takes the client's stream back from hyper and the upstream's as it is.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::{Either, FutureExt, OptionFuture};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::backend::{self, Answer};
use super::headers::{add_forwarded, remove_hop_by_hop};
use super::{error_response, Body, Proxy, ProxyError, Route, Served, Trying};
use crate::drain::{DrainSignal, LiveGuard};
use crate::metrics::names;
use crate::relay::{self, TunnelParams, CLOSE_GRACE};
use crate::server::ConnectionSlot;
use crate::upstream::endpoint::{Endpoint, TunnelGuard};
use crate::upstream::UpstreamStream;
use wsgate_proto::deflate::Agreed;
use wsgate_proto::handshake::{
    add_client_response_headers, prepare_backend_headers, validate_request, validate_response,
    ClientOffer, RequestPolicy,
};
use wsgate_proto::head::RequestHead;
use wsgate_proto::tracker::{Limits, Sender};

/// What the upstream made of the forwarded upgrade request.
enum Outcome {
    /// A valid 101: the client gets `response`, and the tunnel starts once hyper has sent it.
    Tunnel {
        response: Response<Body>,
        client: OnUpgrade,
        upstream: Upstream,
        /// The tunnel's place under the route's `max_connections`, and on its endpoint's count.
        place: (LiveGuard, TunnelGuard),
        endpoint: Arc<Endpoint>,
        deflate: Option<Agreed>,
    },
    /// Anything but 101 is relayed as a plain HTTP response: never a tunnel.
    Refused(Response<Body>, Arc<Endpoint>),
}

/// The upstream's side of a tunnel: its connection and the bytes read past the 101's head.
struct Upstream {
    io: UpstreamStream,
    rest: Bytes,
}

pub async fn handle(
    proxy: &Proxy,
    route: Option<&Route>,
    req: Request<Incoming>,
    peer: SocketAddr,
    received: Instant,
    slot: Arc<ConnectionSlot>,
    trying: &Trying,
) -> Served {
    let Some(route) = route else {
        proxy
            .metrics
            .handshake(names::NO_ROUTE, names::NO_ROUTE_RESULT);
        return (
            error_response(ProxyError::NoRoute.status(), HeaderMap::new()),
            None,
        );
    };
    match negotiate(proxy, route, req, peer, slot.proto, trying).await {
        Ok(Outcome::Tunnel {
            response,
            client,
            upstream,
            place,
            endpoint,
            deflate,
        }) => {
            route.metrics.handshake("ok");
            route
                .metrics
                .handshake_duration
                .observe(received.elapsed().as_secs_f64());
            let params = params(
                route,
                proxy.drain.clone(),
                peer,
                endpoint.addr.clone(),
                deflate,
            );
            slot.set_tunnel(PendingTunnel {
                client,
                upstream,
                place,
                params,
            });
            (response, Some(endpoint))
        }
        Ok(Outcome::Refused(response, endpoint)) => {
            route.metrics.handshake("upstream_rejected");
            (response, Some(endpoint))
        }
        Err(error) => {
            tracing::debug!(route = %route.metrics.route, %peer, %error, "upgrade refused");
            route.metrics.handshake(error.handshake_result());
            (
                error_response(error.status(), error.response_headers()),
                None,
            )
        }
    }
}

async fn negotiate(
    proxy: &Proxy,
    route: &Route,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    proto: &'static str,
    trying: &Trying,
) -> Result<Outcome, ProxyError> {
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
    let client = hyper::upgrade::on(&mut req);
    // The client's head is rewritten in place into the upstream's: no copy of its headers.
    let request = upstream_request(proxy, req, &offer, peer, proto)?;
    let (stream, chosen) = route.upstream.connect(&selection).await?;
    trying.set(&chosen);
    let endpoint = chosen.addr.as_str();
    // For the 101 and for a refusal alike: both came from this endpoint.
    let affinity = route
        .upstream
        .affinity_cookie(&selection, &chosen, proto == "https");

    let timeout = route.upstream.response_timeout();
    let answer = tokio::time::timeout(timeout, backend::exchange(stream, &request))
        .await
        .map_err(|_| ProxyError::ResponseTimeout {
            endpoint: endpoint.to_owned(),
            timeout,
        })?
        .map_err(|source| ProxyError::UpstreamUpgrade {
            endpoint: endpoint.to_owned(),
            source,
        })?;

    let (mut head, upstream) = match answer {
        Answer::Switched { head, io, rest } => (head, Upstream { io, rest }),
        Answer::Response { head, body } => {
            let mut headers = head.headers;
            remove_hop_by_hop(&mut headers);
            if let Some(cookie) = affinity {
                headers.append(http::header::SET_COOKIE, cookie);
            }
            let mut response = Response::new(body.map_err(Into::into).boxed());
            *response.status_mut() = head.status;
            *response.headers_mut() = headers;
            return Ok(Outcome::Refused(response, chosen));
        }
    };
    let negotiated =
        validate_response(&head.headers, &offer).map_err(ProxyError::UpstreamHandshake)?;

    // The client's 101: end-to-end headers of the upstream's (cookies, for one) reach the client;
    // the upgrade headers are wsgate's own.
    remove_hop_by_hop(&mut head.headers);
    strip_websocket_headers(&mut head.headers);
    add_client_response_headers(&mut head.headers, &negotiated);
    // Appended after the backend's own cookies, which stay.
    if let Some(cookie) = affinity {
        head.headers.append(http::header::SET_COOKIE, cookie);
    }
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *response.headers_mut() = head.headers;

    Ok(Outcome::Tunnel {
        response,
        client,
        upstream,
        place: (place, chosen.tunnel()),
        endpoint: chosen,
        deflate: negotiated.deflate.map(|(agreed, _)| agreed),
    })
}

/// The upgrade request as the upstream gets it: HTTP/1.1 GET, the client's end-to-end headers, the
/// offer as the route allows it, and X-Forwarded-*.
fn upstream_request(
    proxy: &Proxy,
    req: Request<Incoming>,
    offer: &ClientOffer,
    peer: SocketAddr,
    proto: &'static str,
) -> Result<Vec<u8>, ProxyError> {
    let (mut parts, _no_body) = req.into_parts();
    let headers = &mut parts.headers;
    remove_hop_by_hop(headers);
    prepare_backend_headers(headers, offer);
    add_forwarded(headers, peer, proto, &proxy.trusted_proxies);
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = RequestHead::new(&http::Method::GET, target).map_err(ProxyError::BuildHead)?;
    head.headers_except(headers, |_| false);
    Ok(head.finish())
}

fn strip_websocket_headers(headers: &mut HeaderMap) {
    // Removed one at a time, without collecting the names: a 101 carries two or three of them.
    while let Some(name) = headers
        .keys()
        .find(|name| name.as_str().starts_with("sec-websocket-"))
        .cloned()
    {
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

/// A validated upgrade waiting for hyper to send the 101, after which the connection's own task runs it.
pub struct PendingTunnel {
    client: OnUpgrade,
    upstream: Upstream,
    /// The tunnel's place under the route's `max_connections`, and on its endpoint's count.
    place: (LiveGuard, TunnelGuard),
    params: TunnelParams,
}

impl PendingTunnel {
    /// The relay of this tunnel, on the client's stream that hyper has handed back (it fulfils the
    /// upgrade before its connection future ends, so nothing is awaited here). A plain function
    /// rather than an async one: an async one would keep a copy of `self` beside the relay for the
    /// tunnel's whole life. The four variants (plain or TLS on each leg) share one future's
    /// storage, and TLS streams are boxed, so a tunnel is about the size of a plain one. `slot`
    /// (the client connection) counts until the tunnel ends.
    pub fn into_relay(self: Box<Self>, slot: Arc<ConnectionSlot>) -> impl Future<Output = ()> {
        let PendingTunnel {
            client,
            upstream,
            place,
            mut params,
        } = *self;
        params.held = Some(Box::new((slot, place)));
        let client = match client.now_or_never() {
            Some(Ok(client)) => {
                let client = ClientIo::from(client);
                if client.is_none() {
                    tracing::error!("upgraded connection of an unexpected type");
                }
                client
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "upgrade did not complete");
                None
            }
            None => {
                tracing::error!("hyper's connection ended before it handed over the upgrade");
                None
            }
        };
        let Upstream { io, rest } = upstream;
        let relay = client.map(|client| match (client, io) {
            (ClientIo::Tcp(c, cp), UpstreamStream::Tcp(u)) => {
                Either::Left(Either::Left(relay::run(c, cp, u, rest, params)))
            }
            (ClientIo::Tcp(c, cp), UpstreamStream::Tls(u)) => {
                Either::Left(Either::Right(relay::run(c, cp, u, rest, params)))
            }
            (ClientIo::Tls(c, cp), UpstreamStream::Tcp(u)) => {
                Either::Right(Either::Left(relay::run(c, cp, u, rest, params)))
            }
            (ClientIo::Tls(c, cp), UpstreamStream::Tls(u)) => {
                Either::Right(Either::Right(relay::run(c, cp, u, rest, params)))
            }
        });
        OptionFuture::from(relay).map(drop)
    }
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

/// The stream of type `T` inside an upgraded connection, and the bytes hyper read past the head.
fn take<T>(upgraded: Upgraded) -> Result<(T, Bytes), Upgraded>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    upgraded
        .downcast::<TokioIo<T>>()
        .map(|parts| (parts.io.into_inner(), parts.read_buf))
}
