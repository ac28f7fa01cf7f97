//! The typed configuration the runtime uses, built from the raw YAML by `validate`.
//! Every value here has already been checked: durations parsed, sizes in bytes, names resolved.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use wsgate_proto::close::CloseCode;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listeners: Vec<ListenerConfig>,
    /// `None` when the YAML has no `admin` section: no metrics listener is started.
    pub admin: Option<AdminConfig>,
    /// Sorted by name, not in YAML order: `upstreams` is read into a `BTreeMap`.
    pub upstreams: Vec<UpstreamConfig>,
    /// In YAML order.
    pub routes: Vec<RouteConfig>,
    pub shutdown: ShutdownConfig,
    /// Peers whose `X-Forwarded-For` is kept; empty = every peer's is kept (and appended to).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Settings that work but are probably mistakes (an unused upstream): `wsgate check` prints them,
    /// the running proxy logs them at start and reload.
    pub warnings: Vec<crate::config::FieldError>,
}

/// What SIGTERM does to open connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownConfig {
    /// Tunnel closes are spread over most of this window; at its end the process exits (default 30s).
    pub drain_timeout: Duration,
    /// 1001 "going away" (default) or 1012 "service restart".
    pub close_code: CloseCode,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            drain_timeout: Duration::from_secs(30),
            close_code: CloseCode::GOING_AWAY,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    pub name: String,
    pub bind: SocketAddr,
    /// Time allowed for the request head to arrive (default 10s).
    pub handshake_timeout: Duration,
    /// Open connections (HTTP and tunnels) at most; `None` = no limit. Past it: 503 and close.
    pub max_connections: Option<usize>,
    /// Request line and headers at most (default 64 KiB); larger heads get 431.
    pub max_request_head_size: usize,
    /// Connections start with a PROXY protocol v1 or v2 header (from an L4 load balancer).
    pub proxy_protocol: bool,
    /// TLS termination; `None` = plain TCP.
    pub tls: Option<ListenerTls>,
    /// Per-client-IP tunnels and handshake rate across the listener's routes.
    pub client_limits: Option<super::ClientLimits>,
    /// HTTP/2 toward clients; `None` = HTTP/1.1 only.
    pub http2: Option<Http2Settings>,
}

/// A listener's HTTP/2 settings (`listeners[].http2_settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2Settings {
    pub max_concurrent_streams: u32,
    pub initial_stream_window_size: u32,
    pub initial_connection_window_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: the listener's `max_request_head_size`.
    pub max_header_list_size: u32,
    /// Streams reset by the client before their response, per connection, before it is closed.
    pub max_client_resets: u32,
}

impl Http2Settings {
    pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 256;
    pub const DEFAULT_STREAM_WINDOW: u32 = 256 * 1024;
    pub const DEFAULT_CONNECTION_WINDOW: u32 = 1024 * 1024;
    pub const DEFAULT_MAX_CLIENT_RESETS: u32 = 100;
}

/// Certificate files of a TLS listener (paths resolved against the config file's directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Per-host certificates chosen by SNI; others get `cert`.
    pub sni: Vec<SniCert>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniCert {
    pub host: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// TLS toward an upstream (`https://` / `wss://` backends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// CA certificates to trust; `None` = the system roots.
    pub ca: Option<PathBuf>,
    /// Name to verify and send as SNI; `None` = the endpoint's host.
    pub server_name: Option<String>,
    /// Client certificate and key, both or neither.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    pub bind: SocketAddr,
    /// Read at start and on each reload (SIGHUP); `None`: mutating endpoints and taps only on a
    /// loopback `bind`.
    pub token_file: Option<PathBuf>,
    pub protect_reads: bool,
    pub tap_payloads: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    pub name: String,
    /// `host:port` strings, at least one; host may be an IP or a DNS name (resolved at each connect).
    pub endpoints: Vec<String>,
    pub balance: Balance,
    /// Default 2s: past it, 504 (or the next endpoint).
    pub connect_timeout: Duration,
    /// Default 60s: time for the upstream to answer a request or an upgrade (its response head).
    pub response_timeout: Duration,
    /// Consecutive connect failures that eject an endpoint (default 3; 0 = never).
    pub max_fails: u32,
    /// How long an ejected endpoint sits out before it is tried again (default 10s).
    pub fail_timeout: Duration,
    /// Endpoints tried for one request when connects fail (default 3, at most the endpoint count).
    pub connect_attempts: usize,
    /// Optional active health checks.
    pub health: Option<HealthCheck>,
    /// `None` = plain TCP to the endpoints.
    pub tls: Option<UpstreamTls>,
    /// `None` = no affinity cookie: every request is balanced on its own.
    pub sticky_cookie: Option<StickyCookie>,
}

/// A cookie wsgate sets naming the endpoint that served a client, and follows while it is eligible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyCookie {
    /// An RFC 6265 token.
    pub name: String,
    /// Default "/".
    pub path: String,
    /// `None` = a session cookie (no `Max-Age`).
    pub max_age: Option<Duration>,
    /// `None` = `Secure` on TLS listeners only.
    pub secure: Option<bool>,
    /// Default true.
    pub http_only: bool,
    pub same_site: SameSite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    /// The default.
    Lax,
    /// Needs `secure: true`: browsers drop `SameSite=None` cookies without `Secure`.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    /// The endpoint with the fewest open WebSocket tunnels.
    LeastConnections,
    /// Sticky: the same key goes to the same endpoint while it is healthy (rendezvous hashing).
    Hash(HashKey),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    ClientIp,
    /// A request header, lower-cased name.
    Header(String),
    Cookie(String),
}

/// `GET path` on every endpoint each `interval`; a 2xx or 3xx within `timeout` marks it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    /// Metric label; defaults to the upstream name.
    pub name: String,
    /// Lower-cased, without port; `*.example.com` matches every name under example.com (not
    /// example.com itself). `None` matches any host.
    pub host: Option<String>,
    /// Default "/".
    pub path_prefix: String,
    /// Index into `Config::upstreams`.
    pub upstream: usize,
    pub websocket: WebSocketConfig,
    pub auth: super::AuthConfig,
    /// Per-client-IP tunnels and handshake rate on this route.
    pub client_limits: Option<super::ClientLimits>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebSocketConfig {
    /// Allowed subprotocols; `None` = pass through whatever the backend picks.
    pub subprotocols: Option<Vec<String>>,
    /// Allowed `Origin` values (exact, case-insensitive match); `None` = any.
    pub allowed_origins: Option<Vec<String>>,
    /// Default 1 MiB.
    pub max_frame_size: u64,
    /// Default 16 MiB.
    pub max_message_size: u64,
    /// Default true.
    pub validate_utf8: bool,
    /// Default `Answer`.
    pub ping: PingMode,
    /// `None` = off: silent peers are not pinged.
    pub keepalive: Option<Keepalive>,
    /// `None` = off. Counts data frames only: pings and pongs do not keep a tunnel open.
    pub idle_timeout: Option<Duration>,
    /// Concurrent tunnels on this route at most; `None` = no limit. Past it: 503.
    pub max_connections: Option<usize>,
    /// A peer whose writes stall this long (it stopped reading) is cut (default 60s).
    pub write_timeout: Duration,
    /// Extensions that may be negotiated through wsgate; empty (default) strips every offer.
    pub extensions: Vec<String>,
    /// Client frames go to the backend masked with fresh random keys, not the client's (default false).
    pub remask: bool,
    /// `None` = senders are not limited.
    pub rate_limit: Option<super::TrafficLimit>,
    /// Tunnels are closed at this age, plus a random jitter of up to 10%.
    pub max_duration: Option<Duration>,
    /// Sent to both sides at `max_duration` (default 1001).
    pub max_duration_close_code: CloseCode,
}

/// wsgate pings a peer silent for `interval`; no frame within `timeout` after that ends the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            subprotocols: None,
            allowed_origins: None,
            max_frame_size: 1 << 20,
            max_message_size: 16 << 20,
            validate_utf8: true,
            ping: PingMode::Answer,
            keepalive: None,
            idle_timeout: None,
            max_connections: None,
            write_timeout: Duration::from_secs(60),
            extensions: Vec::new(),
            remask: false,
            rate_limit: None,
            max_duration: None,
            max_duration_close_code: CloseCode::GOING_AWAY,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingMode {
    /// Client pings are answered by wsgate and not forwarded.
    Answer,
    /// Client pings are relayed to the backend.
    Forward,
}
