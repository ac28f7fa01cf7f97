//! The access checks of a request before it goes upstream, in this order: the client's handshake
//! rate (WebSocket upgrades), its JWT, the forward-auth service, and for upgrades its tunnel places
//! per client IP. A route without any of them costs one branch per request.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::auth::forward::{Decision, ForwardAuth, ForwardError, ForwardSettings, Subject};
use crate::auth::jwt::{JwtError, Verifier};
use crate::auth::token::{self, TokenSource};
use crate::config::{ClientLimits, RouteConfig};
use crate::limits::bucket::Rate;
use crate::limits::clients::{ClientGuard, ClientTable, Limited};
use crate::metrics::names;
use crate::server::StartError;

/// A route's checks, built with its generation (key files are read again on each reload).
pub struct RouteAccess {
    jwt: Option<JwtCheck>,
    forward: Option<ForwardAuth>,
    /// The route's `client_limits` and its table of client addresses (kept across reloads).
    clients: Option<Clients>,
}

struct JwtCheck {
    verifier: Verifier,
    sources: Vec<TokenSource>,
    claims: Vec<(String, HeaderName)>,
    close_on_expiry: bool,
    leeway: Duration,
}

/// One scope's per-client limits: a listener's, or a route's.
#[derive(Clone)]
pub struct Clients {
    pub limits: ClientLimits,
    pub table: Arc<ClientTable>,
}

impl Clients {
    /// The table of `previous` when it has the same size, so that counts survive a reload.
    pub fn new(limits: ClientLimits, previous: Option<&Clients>) -> Clients {
        let table = previous
            .filter(|p| p.limits.table_size == limits.table_size)
            .map_or_else(|| ClientTable::new(limits.table_size), |p| p.table.clone());
        Clients { limits, table }
    }
}

/// Why a request was refused before it went upstream.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("token refused: {0}")]
    Token(#[source] JwtError),
    /// The auth service said no: its answer goes to the client as it is.
    #[error("the auth service refused the request with {}", .0.status())]
    Denied(Box<Response<Bytes>>),
    #[error("forward auth failed: {0}")]
    AuthService(#[source] ForwardError),
    #[error("per-client limit {limit}: {source}")]
    Limited {
        limit: &'static str,
        #[source]
        source: Limited,
    },
}

impl AccessError {
    pub fn status(&self) -> StatusCode {
        match self {
            AccessError::Token(e) => e.status(),
            AccessError::Denied(response) => response.status(),
            AccessError::AuthService(e) => e.status(),
            AccessError::Limited { source, .. } => source.status(),
        }
    }

    pub fn handshake_result(&self) -> &'static str {
        match self {
            AccessError::Token(e) => e.result_label(),
            AccessError::Denied(response) if response.status() == StatusCode::FORBIDDEN => {
                "forbidden"
            }
            AccessError::Denied(_) => "unauthorized",
            AccessError::AuthService(_) => "auth_unavailable",
            AccessError::Limited { .. } => "limited",
        }
    }

    /// RFC 6750 §3: a 401 names the scheme, and says why when a token was sent.
    pub fn response_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        match self {
            AccessError::Token(e) if e.status() == StatusCode::UNAUTHORIZED => {
                let value = match e {
                    JwtError::Missing => "Bearer",
                    _ => "Bearer error=\"invalid_token\"",
                };
                headers.insert(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(value),
                );
            }
            AccessError::Limited { source, .. } => {
                let seconds = source.retry_after().as_secs().max(1);
                if let Ok(value) = HeaderValue::try_from(seconds.to_string()) {
                    headers.insert(http::header::RETRY_AFTER, value);
                }
            }
            _ => {}
        }
        headers
    }
}

/// What the checks found out about an admitted request.
#[derive(Default)]
pub struct Admitted {
    /// With `close_on_expiry`: how long until the token stops being valid.
    pub token_left: Option<Duration>,
    /// Who was admitted: the token's `sub`, else forward auth's identity header (for `/tunnels`).
    pub subject: Option<Box<str>>,
}

/// The tunnel's places under the per-client limits; released when the tunnel ends.
pub struct ClientPlaces {
    _listener: Option<ClientGuard>,
    _route: Option<ClientGuard>,
}

/// Milliseconds on tokio's clock since the first call: the time of the client tables' buckets.
pub fn now_ms() -> u64 {
    static START: OnceLock<tokio::time::Instant> = OnceLock::new();
    let start = *START.get_or_init(tokio::time::Instant::now);
    start.elapsed().as_millis() as u64
}

impl RouteAccess {
    pub fn new(config: &RouteConfig, previous: Option<&RouteAccess>) -> Result<Self, StartError> {
        let auth_error = |message: String| StartError::Auth {
            route: config.name.clone(),
            message,
        };
        let jwt = match &config.auth.jwt {
            Some(j) => Some(JwtCheck {
                // Read again here: a reload re-reads the key file.
                verifier: Verifier::load(&j.settings).map_err(|e| auth_error(e.to_string()))?,
                sources: j.token_from.clone(),
                claims: j.forward_claims.clone(),
                close_on_expiry: j.close_on_expiry,
                leeway: j.settings.leeway,
            }),
            None => None,
        };
        let forward = match &config.auth.forward {
            Some(f) => Some(
                ForwardAuth::new(ForwardSettings {
                    url: f.url.clone(),
                    timeout: f.timeout,
                    pass_headers: f.pass_headers.clone(),
                    copy_headers: f.copy_headers.clone(),
                })
                .map_err(|e| auth_error(e.to_string()))?,
            ),
            None => None,
        };
        let clients = config
            .client_limits
            .map(|limits| Clients::new(limits, previous.and_then(|p| p.clients.as_ref())));
        Ok(RouteAccess {
            jwt,
            forward,
            clients,
        })
    }

    pub fn is_open(&self) -> bool {
        self.jwt.is_none() && self.forward.is_none()
    }

    pub fn clients(&self) -> Option<&Clients> {
        self.clients.as_ref()
    }

    /// JWT, then forward auth; the request's parts are rewritten for the upstream: the token
    /// taken out of the query or the subprotocol offer, claims and the service's headers added.
    pub async fn authenticate(
        &self,
        route: &super::Route,
        parts: &mut http::request::Parts,
        client_ip: IpAddr,
        proto: &'static str,
    ) -> Result<Admitted, AccessError> {
        let mut admitted = Admitted::default();
        if let Some(jwt) = &self.jwt {
            (admitted.token_left, admitted.subject) = jwt.check(parts)?;
        }
        if let Some(forward) = &self.forward {
            let started = std::time::Instant::now();
            let subject = Subject {
                method: &parts.method,
                uri: &parts.uri,
                headers: &parts.headers,
                client_ip,
                proto,
            };
            let decision = forward.check(&subject).await;
            route
                .metrics
                .auth_duration
                .observe(started.elapsed().as_secs_f64());
            match decision.map_err(AccessError::AuthService)? {
                Decision::Allow(headers) => {
                    if admitted.subject.is_none() {
                        admitted.subject = forward.identity(&headers);
                    }
                    forward.apply(headers, &mut parts.headers)
                }
                Decision::Deny(response) => return Err(AccessError::Denied(Box::new(response))),
            }
        }
        Ok(admitted)
    }
}

impl JwtCheck {
    /// The token's time left (with `close_on_expiry`) and its `sub`.
    fn check(
        &self,
        parts: &mut http::request::Parts,
    ) -> Result<(Option<Duration>, Option<Box<str>>), AccessError> {
        let found = token::find(&self.sources, &parts.uri, &parts.headers)
            .ok_or(AccessError::Token(JwtError::Missing))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = self
            .verifier
            .verify(&found.token, now)
            .map_err(AccessError::Token)?;
        if let Some(source) = self.sources.get(found.source) {
            token::strip(source, &mut parts.uri, &mut parts.headers);
        }
        // The client's own copies go first: only the token speaks for these headers.
        for (claim, header) in &self.claims {
            parts.headers.remove(header);
            if let Some(value) = claims
                .header_value(claim)
                .and_then(|v| HeaderValue::try_from(v).ok())
            {
                parts.headers.insert(header.clone(), value);
            }
        }
        let left = claims
            .expires_at()
            .filter(|_| self.close_on_expiry)
            .map(|exp| {
                // Accepted until exp + leeway, so the tunnel lasts as long.
                Duration::from_secs(exp.saturating_sub(now)) + self.leeway
            });
        let subject = claims
            .get("sub")
            .and_then(|sub| sub.as_str())
            .map(Into::into);
        Ok((left, subject))
    }
}

/// The handshake rate of `ip` against the listener's and the route's buckets.
pub fn admit_handshake(
    listener: Option<&Clients>,
    route: Option<&Clients>,
    ip: IpAddr,
) -> Result<(), AccessError> {
    let now = now_ms();
    let scopes = [
        (listener, "client_handshake_rate_listener"),
        (route, "client_handshake_rate_route"),
    ];
    for (clients, limit) in scopes {
        let Some(clients) = clients else { continue };
        if let Some(rate) = clients.limits.handshake_rate {
            let rate = Rate {
                per_second: rate.per_second,
                burst: rate.burst,
            };
            clients
                .table
                .admit_handshake(ip, rate, now)
                .map_err(|source| limited(source, limit))?;
        }
    }
    Ok(())
}

/// Places for one more tunnel of `ip` under the listener's and the route's `max_tunnels`.
pub fn enter_tunnel(
    listener: Option<&Clients>,
    route: Option<&Clients>,
    ip: IpAddr,
) -> Result<ClientPlaces, AccessError> {
    let now = now_ms();
    let enter = |clients: Option<&Clients>, limit| -> Result<Option<ClientGuard>, AccessError> {
        let Some(clients) = clients else {
            return Ok(None);
        };
        let Some(max) = clients.limits.max_tunnels else {
            return Ok(None);
        };
        clients
            .table
            .enter_tunnel(ip, max, now)
            .map(Some)
            .map_err(|source| limited(source, limit))
    };
    Ok(ClientPlaces {
        _listener: enter(listener, "client_tunnels_listener")?,
        _route: enter(route, "client_tunnels_route")?,
    })
}

fn limited(source: Limited, limit: &'static str) -> AccessError {
    let limit = match source {
        Limited::TableFull => "client_table_full",
        _ => limit,
    };
    debug_assert!(names::LIMITS.contains(&limit));
    AccessError::Limited { limit, source }
}
