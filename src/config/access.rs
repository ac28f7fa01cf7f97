//! The typed access-control settings: who may open a route (JWT, forward auth), how many tunnels
//! and handshakes each client IP gets, and how much a tunnel's sender may send.

use std::time::Duration;

use http::HeaderName;

use crate::auth::jwt::JwtSettings;
use crate::auth::token::TokenSource;

/// A route's authentication; both checks may be set (JWT first, then the auth service).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthConfig {
    pub jwt: Option<JwtConfig>,
    pub forward: Option<ForwardAuthConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JwtConfig {
    /// The key file, issuer, audiences, algorithms (empty: what the keys support) and leeway
    /// (default 60s, Envoy's clock skew). The file was loaded once by validation, so a bad one is a
    /// config error naming it.
    pub settings: JwtSettings,
    /// Checked in order; default `header:Authorization`.
    pub token_from: Vec<TokenSource>,
    /// Claim name and the header it is sent to the backend in.
    pub forward_claims: Vec<(String, HeaderName)>,
    pub close_on_expiry: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ForwardAuthConfig {
    pub url: http::Uri,
    /// Default 5s.
    pub timeout: Duration,
    /// Default Cookie and Authorization.
    pub pass_headers: Vec<HeaderName>,
    pub copy_headers: Vec<HeaderName>,
}

/// Per-client-IP limits of a listener (across its routes) or of one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    pub max_tunnels: Option<u32>,
    pub handshake_rate: Option<RateConfig>,
    /// Client addresses tracked at most (default 100,000); past it, new addresses get 429.
    pub table_size: usize,
}

/// A token bucket: `per_second` refill, `burst` capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateConfig {
    pub per_second: u64,
    pub burst: u64,
}

/// `websocket.rate_limit`: what one sender may send through a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficLimit {
    /// Data messages.
    pub messages: Option<RateConfig>,
    /// Data payload bytes.
    pub bytes: Option<RateConfig>,
    /// Upstream senders are limited too (default: clients only).
    pub both_directions: bool,
    pub action: LimitAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitAction {
    /// Stop reading from the sender until its bucket refills: TCP backpressure, nothing dropped.
    Throttle,
    /// Close 1008 to the sender, 1001 to the other side.
    Close,
}
