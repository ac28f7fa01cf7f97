//! Plain HTTP proxying over the upstream's pooled client, bodies streamed both ways.

use std::error::Error as _;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, Version};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body as _, Incoming};

use super::headers::{add_forwarded, remove_hop_by_hop};
use super::{error_response, Proxy, ProxyError, Route, Served, Trying};
use crate::upstream::endpoint::Endpoint;
use crate::upstream::{Attempt, ConnectError, Retry, Selection, Side, Upstream, UpstreamBody};

pub async fn forward(
    proxy: &Proxy,
    route: Option<&Route>,
    req: Request<Incoming>,
    peer: SocketAddr,
    proto: &'static str,
    trying: &Trying,
) -> Served {
    let Some(route) = route else {
        return (
            error_response(ProxyError::NoRoute.status(), Default::default()),
            None,
        );
    };
    let req = if route.access.is_open() {
        req
    } else {
        let ip = super::headers::client_ip(req.headers(), peer, &proxy.trusted_proxies);
        let (mut parts, body) = req.into_parts();
        if let Err(error) = route
            .access
            .authenticate(route, &mut parts, ip, proto)
            .await
        {
            tracing::debug!(route = %route.metrics.route, %peer, %error, "request refused");
            return (ProxyError::from(error).into_response(), None);
        }
        Request::from_parts(parts, body)
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
            let response = Response::from_parts(parts, body.map_err(Into::into).boxed());
            (response, Some(endpoint))
        }
        Err(error) => {
            let route = &route.metrics.route;
            match error.side() {
                Side::Client => tracing::debug!(%route, %peer, %error, "request body failed"),
                Side::Upstream => tracing::warn!(%route, %error, "upstream request failed"),
                Side::Internal => tracing::error!(%route, %error, "upstream request not sent"),
            }
            (error_response(error.status(), Default::default()), None)
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
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let retry = match body.is_end_stream() {
        true => Retry::NextEndpoint,
        false => Retry::Never,
    };
    let mut body = Some(body.boxed());
    let parts = &parts;
    upstream
        .attempt(selection, retry, |endpoint| {
            trying.set(&endpoint);
            // Upstream requests are HTTP/1.1 whatever the client spoke.
            let request = Request::builder()
                .method(parts.method.clone())
                .uri(format!("{}://{}{path}", upstream.scheme, endpoint.addr))
                .version(Version::HTTP_11)
                .body(body.take().unwrap_or_else(empty))
                .map(|mut request| {
                    *request.headers_mut() = parts.headers.clone();
                    request
                });
            async move {
                match request {
                    Ok(request) => try_endpoint(upstream, &endpoint, request).await,
                    Err(e) => Attempt::Failed(ProxyError::BuildRequest(e)),
                }
            }
        })
        .await
}

/// One try of the pooled client on `endpoint`, within `response_timeout`.
async fn try_endpoint(
    upstream: &Upstream,
    endpoint: &Endpoint,
    request: Request<UpstreamBody>,
) -> Attempt<Response<Incoming>, ProxyError> {
    let timeout = upstream.response_timeout();
    match tokio::time::timeout(timeout, upstream.http.request(request)).await {
        Err(_) => Attempt::Failed(ProxyError::ResponseTimeout {
            endpoint: endpoint.addr.to_string(),
            timeout,
        }),
        Ok(Ok(response)) => Attempt::Done(response),
        Ok(Err(e)) if e.is_connect() => Attempt::ConnectFailed(ConnectError::pooled(
            &endpoint.addr,
            upstream.connect_timeout(),
            e,
        )),
        Ok(Err(e)) => Attempt::Failed(classify(&endpoint.addr, e)),
    }
}

fn empty() -> UpstreamBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A request that failed after its connect: the client's fault when its body did (hyper's "user
/// body" error, whose cause is the client connection's): the client left mid-body (EOF, 499) or
/// sent bad chunked framing (400). Else the backend's (502).
fn classify(endpoint: &str, e: hyper_util::client::legacy::Error) -> ProxyError {
    match client_body_fault(&e) {
        Some(BodyFault::Gone) => ProxyError::ClientGone { source: e },
        Some(BodyFault::Bad) => ProxyError::ClientBody { source: e },
        None => ProxyError::Upstream {
            endpoint: endpoint.to_owned(),
            source: e,
        },
    }
}

enum BodyFault {
    Gone,
    Bad,
}

fn client_body_fault(e: &hyper_util::client::legacy::Error) -> Option<BodyFault> {
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
                        io::ErrorKind::UnexpectedEof => BodyFault::Gone,
                        _ => BodyFault::Bad,
                    });
                }
                inner = c.source();
            }
            return Some(BodyFault::Bad);
        }
        source = cause.source();
    }
    None
}
