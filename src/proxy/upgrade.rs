//! The WebSocket leg of a request: validate the client's upgrade, connect to the upstream, send it
//! the request by hand (`backend.rs`), validate its 101, and then run the tunnel in one task that
//! takes the client's stream back from hyper and the upstream's as it is.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{Either, FutureExt, OptionFuture};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::access::{self, AccessError, ClientPlaces};
use super::backend::{self, Answer};
use super::headers::{add_forwarded, client_ip, remove_hop_by_hop};
use super::{error_response, Body, Proxy, ProxyError, Route, Served, Trying};
use crate::drain::{DrainSignal, LiveGuard};
use crate::metrics::names;
use crate::relay::{self, CloseReason, Ending, Policy, TunnelParams, CLOSE_GRACE};
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
        /// The tunnel's place under the route's `max_connections`, on its endpoint's count, and
        /// under the per-client limits.
        place: (LiveGuard, TunnelGuard, ClientPlaces),
        endpoint: Arc<Endpoint>,
        deflate: Option<Agreed>,
        /// With `close_on_expiry`: the token's time left.
        token_left: Option<Duration>,
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
    match negotiate(proxy, route, req, peer, &slot, trying).await {
        Ok(Outcome::Tunnel {
            response,
            client,
            upstream,
            place,
            endpoint,
            deflate,
            token_left,
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
                token_left,
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
            if let ProxyError::Access(AccessError::Limited { limit, .. }) = &error {
                route.metrics.limited(limit);
            }
            (error.into_response(), None)
        }
    }
}

async fn negotiate(
    proxy: &Proxy,
    route: &Route,
    req: Request<Incoming>,
    peer: SocketAddr,
    slot: &ConnectionSlot,
    trying: &Trying,
) -> Result<Outcome, ProxyError> {
    let proto = slot.proto;
    let ws = &route.config.websocket;
    let ip = client_ip(req.headers(), peer, &proxy.trusted_proxies);
    let listener_clients = slot.clients.as_ref();
    let route_clients = route.access.clients();
    access::admit_handshake(listener_clients, route_clients, ip)?;
    // Before the offer is read: a token in the subprotocol offer is taken out of it here.
    let (mut req, admitted) = if route.access.is_open() {
        (req, Default::default())
    } else {
        let (mut parts, body) = req.into_parts();
        let admitted = route
            .access
            .authenticate(route, &mut parts, ip, proto)
            .await?;
        (Request::from_parts(parts, body), admitted)
    };
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
    let client_places = access::enter_tunnel(listener_clients, route_clients, ip)?;

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
        place: (place, chosen.tunnel(), client_places),
        endpoint: chosen,
        deflate: negotiated.deflate.map(|(agreed, _)| agreed),
        token_left: admitted.token_left,
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
    token_expires: Option<Duration>,
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
        policy: {
            let ends = ending(ws, token_expires);
            (ws.rate_limit.is_some() || ends.is_some()).then(|| {
                Box::new(Policy {
                    rate_limit: ws.rate_limit,
                    ends,
                })
            })
        },
    }
}

/// When the tunnel is closed by wsgate: at `max_duration` spread by up to 10% (a cohort that
/// connected together does not reconnect together), or when its token expires, whichever is first.
fn ending(ws: &crate::config::WebSocketConfig, token_expires: Option<Duration>) -> Option<Ending> {
    let now = tokio::time::Instant::now();
    let aged = ws.max_duration.map(|max| Ending {
        at: now + max + max.mul_f64(0.1 * rand::random::<f64>()),
        code: ws.max_duration_close_code.as_u16(),
        reason: CloseReason::MaxDuration,
    });
    let expired = token_expires.map(|left| Ending {
        at: now + left,
        code: wsgate_proto::close::CloseCode::POLICY.as_u16(),
        reason: CloseReason::TokenExpired,
    });
    match (aged, expired) {
        (Some(a), Some(e)) => Some(if e.at <= a.at { e } else { a }),
        (a, e) => a.or(e),
    }
}

/// A validated upgrade waiting for hyper to send the 101, after which the connection's own task runs it.
pub struct PendingTunnel {
    client: OnUpgrade,
    upstream: Upstream,
    /// The tunnel's places under the route's `max_connections`, on its endpoint's count, and
    /// under the per-client limits.
    place: (LiveGuard, TunnelGuard, ClientPlaces),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn max_duration_is_spread_by_up_to_a_tenth_and_an_earlier_expiry_wins() {
        let ws = crate::config::WebSocketConfig {
            max_duration: Some(Duration::from_secs(100)),
            ..Default::default()
        };
        let now = tokio::time::Instant::now();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let end = ending(&ws, None).expect("an end");
            let after = end.at - now;
            assert!(after >= Duration::from_secs(100) && after <= Duration::from_secs(110));
            assert_eq!((end.code, end.reason), (1001, CloseReason::MaxDuration));
            seen.insert(after.as_secs());
        }
        assert!(seen.len() > 5, "not spread: {seen:?}");
        let expiry = ending(&ws, Some(Duration::from_secs(30))).expect("an end");
        assert_eq!(
            (expiry.at - now, expiry.code),
            (Duration::from_secs(30), 1008)
        );
        assert_eq!(expiry.reason, CloseReason::TokenExpired);
        let default = crate::config::WebSocketConfig::default();
        assert!(ending(&default, None).is_none());
    }
}
