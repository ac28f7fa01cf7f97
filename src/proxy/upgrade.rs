//! The WebSocket leg of a request: validate the client's upgrade, connect to the upstream, send it
//! the request by hand (`backend.rs`), validate its 101, and then run the tunnel in one task that
//! takes the client's stream back from hyper and the upstream's as it is.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

use super::access::{self, AccessError};
use super::backend::{self, Answer};
use super::headers::{add_forwarded, client_ip, remove_hop_by_hop};
use super::tunnel::{self, PendingTunnel, Places, Upstream};
use super::{error_response, Body, Proxy, ProxyError, Route, Served, Trying};
use crate::metrics::{names, Transport};
use crate::relay::stream_reset::StreamReset;
use crate::relay::TunnelInfo;
use crate::server::ConnectionSlot;
use crate::upstream::endpoint::Endpoint;
use wsgate_proto::deflate::Agreed;
use wsgate_proto::handshake::{
    add_client_response_headers, add_stream_response_headers, prepare_backend_headers,
    validate_extended_connect, validate_request, ClientOffer, ConnectTarget, RequestPolicy,
};
use wsgate_proto::head::RequestHead;

/// What the upstream made of the forwarded upgrade request. Lives for one handshake, on its
/// stack: the tunnel's variant is not boxed for the sake of the refusal's.
#[allow(clippy::large_enum_variant)]
enum Outcome {
    /// A valid 101: the client gets `response` (a 101, or a stream's 200), and the tunnel starts
    /// once hyper has sent it.
    Tunnel {
        response: Response<Body>,
        client: OnUpgrade,
        upstream: Upstream,
        place: Places,
        endpoint: Arc<Endpoint>,
        deflate: Option<Agreed>,
        /// With `close_on_expiry`: the token's time left.
        token_left: Option<Duration>,
        /// For `/tunnels`.
        subprotocol: Option<Box<str>>,
        extensions: Option<Box<str>>,
        subject: Option<Box<str>>,
    },
    /// Anything but 101 is relayed as a plain HTTP response: never a tunnel.
    Refused(Response<Body>, Arc<Endpoint>),
}

/// One client request, HTTP/1.1 upgrade or HTTP/2 extended CONNECT.
pub(super) struct Upgrade<'a> {
    pub proxy: &'a Proxy,
    pub route: Option<&'a Route>,
    pub peer: SocketAddr,
    pub received: Instant,
    pub slot: Arc<ConnectionSlot>,
    pub transport: Transport,
}

pub(super) async fn handle(up: Upgrade<'_>, req: Request<Incoming>, trying: &Trying) -> Served {
    let Upgrade {
        proxy,
        route,
        peer,
        received,
        slot,
        transport,
    } = up;
    let Some(route) = route else {
        proxy
            .metrics
            .handshake(names::NO_ROUTE, transport, names::NO_ROUTE_RESULT);
        return (
            error_response(ProxyError::NoRoute.status(), HeaderMap::new()),
            None,
        );
    };
    match negotiate(proxy, route, req, peer, &slot, transport, trying).await {
        Ok(Outcome::Tunnel {
            mut response,
            client,
            upstream,
            place,
            endpoint,
            deflate,
            token_left,
            subprotocol,
            extensions,
            subject,
        }) => {
            route.metrics.handshake(transport, "ok");
            route
                .metrics
                .handshake_duration
                .observe(received.elapsed().as_secs_f64());
            let (live, registration) = proxy.sessions.register(TunnelInfo {
                id: 0,
                route: route.metrics.route.clone(),
                listener: slot.listener.clone(),
                client: peer,
                upstream: route.upstream.name.clone(),
                endpoint: endpoint.addr.clone(),
                transport,
                subprotocol,
                extensions,
                subject,
            });
            let place = (place, registration);
            let params = tunnel::params(route, proxy.drain.clone(), live, deflate, token_left);
            match transport {
                Transport::H1 => slot.set_tunnel(PendingTunnel {
                    client,
                    upstream,
                    place,
                    params,
                }),
                Transport::H2 => {
                    // Read by the listener as the 200 leaves (stream_reset.rs).
                    let reset = Arc::new(StreamReset::default());
                    response.extensions_mut().insert(reset.clone());
                    tunnel::spawn_on_stream(client, upstream, place, params, slot, reset)
                }
            }
            (response, Some(endpoint))
        }
        Ok(Outcome::Refused(response, endpoint)) => {
            route.metrics.handshake(transport, "upstream_rejected");
            (response, Some(endpoint))
        }
        Err(error) => {
            tracing::debug!(route = %route.metrics.route, %peer, %error, "upgrade refused");
            route.metrics.handshake(transport, error.handshake_result());
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
    transport: Transport,
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
    let offer = match transport {
        Transport::H1 => validate_request(req.method(), req.version(), req.headers(), &policy),
        Transport::H2 => {
            let uri = req.uri();
            let target = ConnectTarget {
                scheme: uri.scheme_str(),
                path: uri.path_and_query().map(|p| p.as_str()),
                authority: uri.authority().map(|a| a.as_str()),
            };
            validate_extended_connect(target, req.headers(), &policy, fresh_key())
        }
    }
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
    let endpoint = &*chosen.addr;
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
    let negotiated = wsgate_proto::handshake::validate_response(&head.headers, &offer)
        .map_err(ProxyError::UpstreamHandshake)?;

    // The client's 101 (or its stream's 200): end-to-end headers of the upstream's (cookies, for
    // one) reach the client; the upgrade headers are wsgate's own.
    remove_hop_by_hop(&mut head.headers);
    strip_websocket_headers(&mut head.headers);
    let status = match transport {
        Transport::H1 => {
            add_client_response_headers(&mut head.headers, &negotiated);
            StatusCode::SWITCHING_PROTOCOLS
        }
        Transport::H2 => {
            add_stream_response_headers(&mut head.headers, &negotiated);
            StatusCode::OK
        }
    };
    // Appended after the backend's own cookies, which stay.
    if let Some(cookie) = affinity {
        head.headers.append(http::header::SET_COOKIE, cookie);
    }
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    *response.headers_mut() = head.headers;

    Ok(Outcome::Tunnel {
        response,
        client,
        upstream,
        place: (place, chosen.tunnel(), client_places),
        endpoint: chosen,
        subprotocol: negotiated.protocol.map(Into::into),
        extensions: negotiated
            .deflate
            .as_ref()
            .map(|(_, element)| element.as_str().into()),
        deflate: negotiated.deflate.map(|(agreed, _)| agreed),
        token_left: admitted.token_left,
        subject: admitted.subject,
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

/// The key wsgate sends upstream for an HTTP/2 client, which has none (RFC 8441 §5): 16 random
/// bytes in base64, from rand's thread-local CSPRNG.
fn fresh_key() -> HeaderValue {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    HeaderValue::try_from(text).expect("base64 is a valid header value")
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
