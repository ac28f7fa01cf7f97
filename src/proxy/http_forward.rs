//! Plain HTTP proxying over the upstream's pooled client, bodies streamed both ways.

use std::error::Error as _;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::headers::{add_forwarded, remove_hop_by_hop};
use super::{error_response, Body, Proxy, ProxyError, Route, ServedBy};
use crate::upstream::ConnectError;

pub async fn forward(
    proxy: &Proxy,
    route: Option<&Route>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let Some(route) = route else {
        return error_response(ProxyError::NoRoute.status(), Default::default());
    };
    let endpoint = route.upstream.pick();
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = match format!("http://{endpoint}{path}").parse() {
        Ok(uri) => uri,
        Err(_) => return error_response(http::StatusCode::BAD_REQUEST, Default::default()),
    };
    *req.uri_mut() = uri;
    // Upstream requests are HTTP/1.1 whatever the client spoke; hop-by-hop headers stop here.
    *req.version_mut() = Version::HTTP_11;
    remove_hop_by_hop(req.headers_mut());
    add_forwarded(req.headers_mut(), peer, "http", &proxy.trusted_proxies);

    match route.upstream.http.request(req).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            remove_hop_by_hop(&mut parts.headers);
            parts.extensions.insert(ServedBy(endpoint.to_owned()));
            Response::from_parts(parts, body.boxed())
        }
        Err(e) => {
            let error = if e.is_connect() {
                proxy
                    .metrics
                    .upstream_connect_error(&route.upstream.name, endpoint);
                ProxyError::Connect(connect_error(
                    endpoint,
                    route.upstream.connect_timeout(),
                    &e,
                ))
            } else {
                ProxyError::Upstream(e.to_string())
            };
            tracing::warn!(route = %route.metrics.route, %endpoint, error = %error, "upstream request failed");
            error_response(error.status(), Default::default())
        }
    }
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
