//! Forward auth (nginx `auth_request`, Traefik ForwardAuth, Caddy `forward_auth`): before a request
//! goes upstream, a `GET` to an auth service over a pooled keep-alive client decides; 2xx lets it
//! through (with headers for the upstream), 401/403/3xx are relayed to the client, anything else fails.

use std::net::IpAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body as _, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::{timeout_at, Instant};

use crate::config::UpstreamTls;
use crate::proxy::headers::remove_hop_by_hop;
use crate::tls::TlsError;

/// The largest denial body relayed; a login page fits, and a bigger one is a broken service.
pub const MAX_DENY_BODY: usize = 64 * 1024;

const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

type ClientError = hyper_util::client::legacy::Error;

#[derive(Debug, Clone)]
pub struct ForwardSettings {
    /// The auth service: `http://` or `https://` (system roots), its path and query sent as they are.
    pub url: Uri,
    /// Bounds the whole exchange: connect, response head and a denial's body.
    pub timeout: Duration,
    /// The client's headers the service sees (all values); config's default is Cookie, Authorization.
    pub pass_headers: Vec<HeaderName>,
    /// The service's headers on a 2xx that go to the upstream.
    pub copy_headers: Vec<HeaderName>,
}

/// What the auth service is told about the client's request.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub client_ip: IpAddr,
    /// `"http"` or `"https"`.
    pub proto: &'static str,
}

#[derive(Debug)]
pub enum Decision {
    /// 2xx: these headers (the `copy_headers` the service sent, possibly several values each) go to
    /// the upstream, replacing any the client sent under those names (`ForwardAuth::apply`).
    Allow(HeaderMap),
    /// 401, 403 or any 3xx: relayed to the client as the service sent it (status, end-to-end
    /// headers, body).
    Deny(Response<Bytes>),
}

/// Why `ForwardAuth::new` refused its settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{url}: the auth URL must start with http:// or https://")]
    Scheme { url: String },
    #[error("{url}: the auth URL has no host")]
    NoHost { url: String },
    /// Credentials in the URL would never be sent: hyper sends no `Authorization` for them.
    #[error("{url}: the auth URL must not carry credentials")]
    UserInfo { url: String },
    #[error("TLS toward the auth service: {0}")]
    Tls(#[source] TlsError),
}

/// Why a check has no decision: the service could not be asked, or answered nonsense.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("the auth service did not answer within {0:?}")]
    Timeout(Duration),
    #[error("connecting to the auth service failed: {0}")]
    Connect(#[source] ClientError),
    /// Connected, but the connection failed before a response head (hung up, bad HTTP).
    #[error("the auth service failed: {0}")]
    Exchange(#[source] ClientError),
    #[error("the auth service's denial body is over {MAX_DENY_BODY} bytes")]
    BodyTooLarge,
    #[error("reading the auth service's denial body failed: {0}")]
    Body(#[source] hyper::Error),
    /// Neither 2xx nor a denial (e.g. 500, 404): the service is broken or misconfigured.
    #[error("the auth service answered {0}")]
    Unexpected(StatusCode),
}

impl ForwardError {
    /// The status the client gets: the one mapping, row by row in the tests.
    pub fn status(&self) -> StatusCode {
        match self {
            // The service cannot be asked right now. Traefik and nginx answer 500 here too; 503 says
            // that a dependency is down and a retry may pass, as for an upstream with no healthy
            // endpoint, and keeps these apart from a service that answers wrongly.
            ForwardError::Timeout(_)
            | ForwardError::Connect(_)
            | ForwardError::Exchange(_)
            | ForwardError::BodyTooLarge
            | ForwardError::Body(_) => StatusCode::SERVICE_UNAVAILABLE,
            // nginx `auth_request`: "any other response code returned by the subrequest is
            // considered an error" and answered 500 (Traefik relays the 500 itself). The service is
            // up but answers wrongly: a fault on the server's side, not a transient unavailability.
            ForwardError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The auth client of one route (or of several sharing settings): `Send + Sync`, kept in an `Arc`.
pub struct ForwardAuth {
    url: Uri,
    /// The url's authority, as the `Host` the service gets.
    host: HeaderValue,
    timeout: Duration,
    /// `pass_headers` less the ones never sent (`never_forwarded`).
    pass: Vec<HeaderName>,
    /// `copy_headers` less the same ones: a service's `Content-Length` must not reach the upstream.
    copy: Vec<HeaderName>,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl ForwardAuth {
    pub fn new(settings: ForwardSettings) -> Result<Self, SettingsError> {
        let url = settings.url;
        let https = match url.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(SettingsError::Scheme {
                    url: url.to_string(),
                })
            }
        };
        let Some(authority) = url.authority().filter(|a| !a.host().is_empty()) else {
            return Err(SettingsError::NoHost {
                url: url.to_string(),
            });
        };
        if authority.as_str().contains('@') {
            return Err(SettingsError::UserInfo {
                url: url.to_string(),
            });
        }
        let host =
            HeaderValue::from_str(authority.as_str()).map_err(|_| SettingsError::NoHost {
                url: url.to_string(),
            })?;
        let pass = keep_forwardable(settings.pass_headers, "pass_headers");
        let copy = keep_forwardable(settings.copy_headers, "copy_headers");
        let client = pooled(https, settings.timeout)?;
        Ok(ForwardAuth {
            url,
            host,
            timeout: settings.timeout,
            pass,
            copy,
            client,
        })
    }

    /// Asks the service about `subject`, within the timeout.
    pub async fn check(&self, subject: &Subject<'_>) -> Result<Decision, ForwardError> {
        let deadline = Instant::now() + self.timeout;
        let response = match timeout_at(deadline, self.client.request(self.request(subject))).await
        {
            Err(_) => return Err(ForwardError::Timeout(self.timeout)),
            Ok(Err(e)) if e.is_connect() => return Err(ForwardError::Connect(e)),
            Ok(Err(e)) => return Err(ForwardError::Exchange(e)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let (mut parts, body) = response.into_parts();
        if status.is_success() {
            let allowed = self.copied(&parts.headers);
            // Read to its end, a small body lets the connection go back to the pool; the decision
            // is made, so a failure or the deadline here changes nothing.
            if !body.is_end_stream() {
                let _ = timeout_at(deadline, read_limited(body)).await;
            }
            return Ok(Decision::Allow(allowed));
        }
        // nginx relays only 401 and 403, Traefik every non-2xx; 3xx is kept for login redirects,
        // and the rest (500, 404...) is a broken service, not an answer about this client.
        let denial = matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
            || status.is_redirection();
        if !denial {
            return Err(ForwardError::Unexpected(status));
        }
        let body = timeout_at(deadline, read_limited(body))
            .await
            .map_err(|_| ForwardError::Timeout(self.timeout))??;
        // End-to-end headers (WWW-Authenticate, Location, Set-Cookie, Content-Type, Content-Length,
        // which matches the body read whole) go to the client; this hop's own do not.
        remove_hop_by_hop(&mut parts.headers);
        let mut deny = Response::new(body);
        *deny.status_mut() = status;
        *deny.headers_mut() = parts.headers;
        Ok(Decision::Deny(deny))
    }

    /// Who the service says the client is: the first value of the first `copy_headers` name it
    /// sent (`X-User`, say), for `/tunnels`.
    pub fn identity(&self, allowed: &HeaderMap) -> Option<Box<str>> {
        self.copy
            .iter()
            .find_map(|name| allowed.get(name))
            .and_then(|v| v.to_str().ok())
            .map(Into::into)
    }

    /// Puts an `Allow`'s headers on the upstream request: every `copy_headers` name the client sent
    /// is removed first, even when the service did not send it (as Traefik does), so that a client
    /// cannot forge an identity header the service left out.
    pub fn apply(&self, allowed: HeaderMap, request: &mut HeaderMap) {
        for name in &self.copy {
            request.remove(name);
        }
        let mut last = None;
        for (name, value) in allowed {
            // `HeaderMap`'s iterator names only the first of each run of values.
            if let Some(name) = name {
                last = Some(name);
            }
            if let Some(name) = &last {
                request.append(name.clone(), value);
            }
        }
    }

    fn request(&self, subject: &Subject<'_>) -> Request<Empty<Bytes>> {
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = self.url.clone();
        let headers = request.headers_mut();
        for name in &self.pass {
            if named_by_connection(subject.headers, name) {
                continue;
            }
            for value in subject.headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        // Inserted after the client's: these replace any a client sent or pass_headers listed.
        headers.insert(header::HOST, self.host.clone());
        if let Ok(method) = HeaderValue::from_str(subject.method.as_str()) {
            headers.insert(X_FORWARDED_METHOD, method);
        }
        let target = subject.uri.path_and_query().map_or("/", |p| p.as_str());
        if let Ok(target) = HeaderValue::from_str(target) {
            headers.insert(X_FORWARDED_URI, target);
        }
        let host = match subject.headers.get(header::HOST) {
            Some(host) => Some(host.clone()),
            None => subject
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
        };
        if let Some(host) = host {
            headers.insert(X_FORWARDED_HOST, host);
        }
        if let Ok(ip) = HeaderValue::from_str(&subject.client_ip.to_string()) {
            headers.insert(X_FORWARDED_FOR, ip);
        }
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(subject.proto));
        request
    }

    fn copied(&self, response: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::new();
        for name in &self.copy {
            for value in response.get_all(name) {
                out.append(name.clone(), value.clone());
            }
        }
        out
    }
}

/// Headers that describe a connection rather than a request, never sent to the service or copied
/// from it whatever the config says. Passing a client's upgrade headers on to an auth service (which
/// then answers 101, or keeps the socket) is a known bug class in other proxies.
fn never_forwarded(name: &HeaderName) -> bool {
    let name = name.as_str(); // lower case, as `HeaderName` keeps it
    matches!(
        name,
        "connection"
            | "upgrade"
            | "keep-alive"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "content-length"
            | "http2-settings"
    ) || name.starts_with("proxy-")
        || name.starts_with("sec-websocket-")
}

fn keep_forwardable(names: Vec<HeaderName>, field: &str) -> Vec<HeaderName> {
    let (kept, dropped): (Vec<_>, Vec<_>) = names.into_iter().partition(|n| !never_forwarded(n));
    for name in dropped {
        tracing::warn!(%name, field, "forward auth: a hop-by-hop or upgrade header is never forwarded");
    }
    kept
}

/// Whether the client's `Connection` header names `name`, which makes it hop-by-hop (RFC 9110
/// §7.6.1) whatever it is.
fn named_by_connection(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case(name.as_str()))
}

/// The service's body, whole, or `BodyTooLarge` past `MAX_DENY_BODY` (not read further).
async fn read_limited(mut body: Incoming) -> Result<Bytes, ForwardError> {
    if body.size_hint().lower() > MAX_DENY_BODY as u64 {
        return Err(ForwardError::BodyTooLarge);
    }
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(ForwardError::Body)?.into_data() else {
            continue; // trailers
        };
        if out.len() + data.len() > MAX_DENY_BODY {
            return Err(ForwardError::BodyTooLarge);
        }
        out.extend_from_slice(&data);
    }
    Ok(out.freeze())
}

/// Keep-alive connections to the service, built as `upstream::client::pooled` builds an upstream's;
/// `https` trusts the system roots.
fn pooled(
    https: bool,
    connect_timeout: Duration,
) -> Result<Client<HttpsConnector<HttpConnector>, Empty<Bytes>>, SettingsError> {
    let tls = match https {
        true => crate::tls::client_config(&UpstreamTls {
            ca: None,
            server_name: None,
            cert: None,
            key: None,
        }),
        false => crate::tls::plain_client_config(),
    }
    .map_err(SettingsError::Tls)?;
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(false);
    // hyper-rustls sets ALPN from enable_http1 and panics if the config already has some.
    let mut tls = (*tls).clone();
    tls.alpn_protocols.clear();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(https))
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
