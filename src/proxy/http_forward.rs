//! Plain HTTP proxying over the upstream's pooled client, bodies streamed both ways.

use std::error::Error as _;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use http::{Request, Response, Version};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body as _, Incoming};

use super::headers::{add_forwarded, remove_hop_by_hop};
use super::{error_response, Body, Proxy, ProxyError, Route, ServedBy, Trying};
use crate::upstream::endpoint::Endpoint;
use crate::upstream::{ConnectError, Selection, UpstreamBody};

pub async fn forward(
    proxy: &Proxy,
    route: Option<&Route>,
    req: Request<Incoming>,
    peer: SocketAddr,
    proto: &'static str,
    trying: &Trying,
) -> Response<Body> {
    let Some(route) = route else {
        return error_response(ProxyError::NoRoute.status(), Default::default());
    };
    let selection = route.upstream.select(req.headers(), peer);
    match send(proxy, route, req, peer, proto, &selection, trying).await {
        Ok((response, endpoint)) => {
            let (mut parts, body) = response.into_parts();
            remove_hop_by_hop(&mut parts.headers);
            // Appended: the backend's own cookies stay.
            if let Some(cookie) =
                route
                    .upstream
                    .affinity_cookie(&selection, &endpoint, proto == "https")
            {
                parts.headers.append(http::header::SET_COOKIE, cookie);
            }
            parts.extensions.insert(ServedBy(endpoint.addr.clone()));
            Response::from_parts(parts, body.boxed())
        }
        Err(error @ (ProxyError::ClientGone | ProxyError::ClientBody(_))) => {
            tracing::debug!(route = %route.metrics.route, %peer, %error, "request body failed");
            error_response(error.status(), Default::default())
        }
        Err(error) => {
            tracing::warn!(route = %route.metrics.route, error = %error, "upstream request failed");
            error_response(error.status(), Default::default())
        }
    }
}

/// Sends the request to a chosen endpoint. A request without a body is sent again to the next
/// endpoint when a connect fails (nothing reached the upstream yet); one with a body is not, since
/// its body was consumed.
async fn send(
    proxy: &Proxy,
    route: &Route,
    req: Request<Incoming>,
    peer: SocketAddr,
    proto: &'static str,
    selection: &Selection,
    trying: &Trying,
) -> Result<(Response<Incoming>, Arc<Endpoint>), ProxyError> {
    let upstream = &route.upstream;
    let (mut parts, body) = req.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    add_forwarded(&mut parts.headers, peer, proto, &proxy.trusted_proxies);
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let retryable = body.is_end_stream();
    let mut body = Some(body.boxed());
    let mut tried = upstream.untried();
    let mut last = None;
    for _ in 0..upstream.attempts() {
        let Some(endpoint) = upstream.pick(selection, &tried) else {
            break;
        };
        upstream.mark_tried(&endpoint, &mut tried);
        trying.set(&endpoint);
        // Upstream requests are HTTP/1.1 whatever the client spoke.
        let mut request = Request::builder()
            .method(parts.method.clone())
            .uri(format!("{}://{}{path}", upstream.scheme, endpoint.addr))
            .version(Version::HTTP_11)
            .body(body.take().unwrap_or_else(empty))
            .map_err(|e| ProxyError::Upstream(e.to_string()))?;
        *request.headers_mut() = parts.headers.clone();
        let timeout = upstream.response_timeout();
        match tokio::time::timeout(timeout, upstream.http.request(request)).await {
            Err(_) => {
                return Err(ProxyError::ResponseTimeout {
                    endpoint: endpoint.addr.clone(),
                    timeout,
                })
            }
            Ok(Ok(response)) => {
                endpoint.connect_succeeded();
                return Ok((response, endpoint));
            }
            Ok(Err(e)) if e.is_connect() => {
                upstream.connect_failed(&endpoint);
                last = Some(connect_error(
                    &endpoint.addr,
                    upstream.connect_timeout(),
                    &e,
                ));
                if !retryable {
                    break;
                }
            }
            Ok(Err(e)) => {
                return Err(client_body_error(&e)
                    .unwrap_or_else(|| ProxyError::Upstream(format!("{}: {e}", endpoint.addr))))
            }
        }
    }
    Err(ProxyError::Connect(last.unwrap_or_else(|| {
        ConnectError::NoHealthyEndpoint {
            upstream: upstream.name.clone(),
        }
    })))
}

fn empty() -> UpstreamBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A request that failed because the client's body did (hyper's "user body" error, whose cause is
/// the client connection's): the client left mid-body (EOF) or sent bad chunked framing. Not the
/// backend's fault, so not a 502.
fn client_body_error(e: &hyper_util::client::legacy::Error) -> Option<ProxyError> {
    let mut source = e.source();
    while let Some(cause) = source {
        if cause
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_user)
        {
            let mut inner = cause.source();
            while let Some(c) = inner {
                if let Some(io) = c.downcast_ref::<io::Error>() {
                    return Some(match io.kind() {
                        io::ErrorKind::UnexpectedEof => ProxyError::ClientGone,
                        _ => ProxyError::ClientBody(io.to_string()),
                    });
                }
                inner = c.source();
            }
            return Some(ProxyError::ClientBody(cause.to_string()));
        }
        source = cause.source();
    }
    None
}

/// Finds the I/O cause of a connect failure to tell a timeout (504) from a refusal (502).
fn connect_error(
    endpoint: &str,
    timeout: Duration,
    e: &hyper_util::client::legacy::Error,
) -> ConnectError {
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::TimedOut {
                return ConnectError::Timeout {
                    endpoint: endpoint.to_owned(),
                    timeout,
                };
            }
            return ConnectError::Failed {
                endpoint: endpoint.to_owned(),
                source: io::Error::new(io.kind(), io.to_string()),
            };
        }
        source = cause.source();
    }
    ConnectError::Failed {
        endpoint: endpoint.to_owned(),
        source: io::Error::other(e.to_string()),
    }
}
