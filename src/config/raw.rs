//! The YAML document as written: serde structs that reject unknown keys; validation (validate.rs)
//! turns them into the typed config.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Addresses wsgate accepts client connections on.
    #[serde(default)]
    pub listeners: Vec<RawListener>,
    /// The metrics and health listener; absent = none.
    pub admin: Option<RawAdmin>,
    /// Named groups of backend endpoints.
    #[serde(default)]
    pub upstreams: BTreeMap<String, RawUpstream>,
    /// Host and path rules choosing an upstream, in order.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// What SIGTERM does to open connections.
    pub shutdown: Option<RawShutdown>,
    /// CIDRs of proxies whose X-Forwarded-For is kept.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShutdown {
    /// The drain window, e.g. "30s".
    pub drain_timeout: Option<String>,
    /// 1001 or 1012.
    pub close_code: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    /// Used in logs and the library API.
    pub name: String,
    /// `ip:port`; port 0 picks a free port.
    pub bind: String,
    /// Time allowed for a request head, e.g. "10s".
    pub handshake_timeout: Option<String>,
    /// TLS termination.
    pub tls: Option<RawListenerTls>,
    /// Open connections at most (HTTP and tunnels).
    pub max_connections: Option<usize>,
    /// Request head size limit, e.g. "64KiB".
    pub max_request_head_size: Option<RawSize>,
    /// Expect a PROXY protocol v1/v2 header on every connection.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// Per-client-IP limits across every route of this listener.
    pub client_limits: Option<RawClientLimits>,
    /// HTTP/2: ALPN `h2` on TLS listeners (default on), prior knowledge on plain ones (default off).
    pub http2: Option<bool>,
    /// HTTP/2 connection settings.
    pub http2_settings: Option<RawHttp2Settings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp2Settings {
    /// Streams open at once per connection (default 256).
    pub max_concurrent_streams: Option<u32>,
    /// Flow-control window of each stream, e.g. "256KiB".
    pub initial_stream_window_size: Option<RawSize>,
    /// Flow-control window of the whole connection, e.g. "1MiB".
    pub initial_connection_window_size: Option<RawSize>,
    /// Streams a client may reset before wsgate answered them, per connection, before it is cut
    /// off (rapid reset, CVE-2023-44487; default 100).
    pub max_client_resets: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// `ip:port` of /metrics, /healthz, /readyz and the tunnels API.
    pub bind: String,
    /// A file holding the bearer token the tunnels API's mutating endpoints and taps need.
    pub token_file: Option<String>,
    /// The token is needed to list tunnels too.
    pub protect_reads: Option<bool>,
    /// Taps may show payload bytes.
    pub tap_payloads: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// `host:port` of each backend.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// `round_robin` (default), `least_connections` or `hash`.
    pub balance: Option<String>,
    /// With `balance: hash`: `client_ip` (default), `header:NAME` or `cookie:NAME`.
    pub hash_key: Option<String>,
    /// TCP connect timeout, e.g. "2s".
    pub connect_timeout: Option<String>,
    /// Time for the response head, e.g. "60s".
    pub response_timeout: Option<String>,
    /// Consecutive connect failures that eject an endpoint.
    pub max_fails: Option<u32>,
    /// Ejection back-off, e.g. "10s".
    pub fail_timeout: Option<String>,
    /// Endpoints tried per request when connects fail.
    pub connect_attempts: Option<usize>,
    /// Active health checks.
    pub health: Option<RawHealth>,
    /// TLS toward the backend.
    pub tls: Option<RawUpstreamTls>,
    /// Affinity cookies inserted by wsgate.
    pub sticky_cookie: Option<RawStickyCookie>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStickyCookie {
    /// Cookie name (an RFC 6265 token).
    pub name: String,
    /// `Path` attribute; default "/".
    pub path: Option<String>,
    /// `Max-Age`, e.g. "1h"; absent = a session cookie.
    pub max_age: Option<String>,
    /// `Secure`; absent = on TLS listeners only.
    pub secure: Option<bool>,
    /// `HttpOnly`; default true.
    pub http_only: Option<bool>,
    /// `strict`, `lax` (default) or `none`.
    pub same_site: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListenerTls {
    /// PEM certificate chain.
    pub cert: String,
    /// PEM private key.
    pub key: String,
    /// Per-host certificates chosen by SNI.
    #[serde(default)]
    pub sni: Vec<RawSniCert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSniCert {
    /// Server name the client asks for.
    pub host: String,
    /// PEM certificate chain.
    pub cert: String,
    /// PEM private key.
    pub key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamTls {
    /// PEM CA certificates to trust (default: the system roots).
    pub ca: Option<String>,
    /// Name to verify (default: the endpoint's host).
    pub server_name: Option<String>,
    /// PEM client certificate chain.
    pub cert: Option<String>,
    /// PEM client key.
    pub key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    /// Path to GET, e.g. "/healthz".
    pub path: String,
    /// Between checks, e.g. "5s".
    pub interval: Option<String>,
    /// Answer deadline, e.g. "1s"; below `interval`.
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Metric label; defaults to the upstream name.
    pub name: Option<String>,
    /// Which requests this route takes.
    #[serde(rename = "match", default)]
    pub matcher: RawMatch,
    /// Name of an entry of `upstreams`.
    pub upstream: String,
    /// WebSocket options.
    #[serde(default)]
    pub websocket: RawWebSocket,
    /// Who may use this route: JWT and forward auth.
    pub auth: Option<RawAuth>,
    /// Per-client-IP limits on this route.
    pub client_limits: Option<RawClientLimits>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// Host without port, case-insensitive, or `*.example.com` for every name under example.com;
    /// absent = any host.
    pub host: Option<String>,
    /// Plain string prefix of the path; default "/".
    pub path_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebSocket {
    /// Allowed subprotocols; absent = pass through.
    pub subprotocols: Option<Vec<String>>,
    /// Allowed Origin values, `scheme://host[:port]` as browsers send them (or `null`); absent = any.
    pub allowed_origins: Option<Vec<String>>,
    /// Largest frame payload, e.g. "1MiB".
    pub max_frame_size: Option<RawSize>,
    /// Largest message (all fragments), e.g. "16MiB".
    pub max_message_size: Option<RawSize>,
    /// Check text messages are UTF-8.
    pub validate_utf8: Option<bool>,
    /// `answer` or `forward` client pings.
    pub ping: Option<String>,
    /// Ping silent peers and close dead ones.
    pub keepalive: Option<RawKeepalive>,
    /// Close tunnels without data frames for this long, e.g. "10m".
    pub idle_timeout: Option<String>,
    /// Concurrent tunnels on this route at most.
    pub max_connections: Option<usize>,
    /// Cut a peer whose writes stall this long, e.g. "60s".
    pub write_timeout: Option<String>,
    /// Extensions negotiated through the proxy: `[permessage-deflate]` or empty.
    pub extensions: Option<Vec<String>>,
    /// Re-mask client frames toward the backend with fresh random keys.
    pub remask: Option<bool>,
    /// Messages and bytes per second a tunnel's sender may send.
    pub rate_limit: Option<RawRateLimit>,
    /// Close tunnels at this age (plus up to 10% jitter), e.g. "1h".
    pub max_duration: Option<String>,
    /// The close code sent at `max_duration`; default 1001.
    pub max_duration_close_code: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeepalive {
    /// Silence after which wsgate pings the peer, e.g. "30s".
    pub interval: String,
    /// Time the peer has to answer (any frame counts), e.g. "10s".
    pub timeout: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Verify a JSON Web Token carried by the request.
    pub jwt: Option<RawJwt>,
    /// Ask an auth service about each request.
    pub forward: Option<RawForwardAuth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    /// A PEM public key, a JWKS file, or an HMAC secret file.
    pub keys: String,
    /// Required `iss`; absent = any.
    pub issuer: Option<String>,
    /// Accepted `aud` values (any one); absent = any.
    pub audiences: Option<Vec<String>>,
    /// Accepted `alg` values; absent = what the keys support.
    pub algorithms: Option<Vec<String>>,
    /// Clock skew allowed on `exp` and `nbf`, e.g. "30s"; default 60s.
    pub leeway: Option<String>,
    /// Where to look, in order: `header:Authorization`, `query:NAME`, `cookie:NAME`, `subprotocol:PREFIX`.
    pub token_from: Option<Vec<String>>,
    /// Claim -> header toward the backend, e.g. `sub: X-User-Id`.
    pub forward_claims: Option<BTreeMap<String, String>>,
    /// Close a tunnel with 1008 when its token's `exp` passes.
    pub close_on_expiry: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForwardAuth {
    /// `http://` or `https://` URL the auth service answers GETs on.
    pub url: String,
    /// For the whole auth exchange, e.g. "2s"; default 5s.
    pub timeout: Option<String>,
    /// Client request headers sent to the service; default Cookie and Authorization.
    pub pass_headers: Option<Vec<String>>,
    /// Auth response headers copied into the upstream request.
    pub copy_headers: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientLimits {
    /// Concurrent WebSocket tunnels per client IP.
    pub max_tunnels: Option<u32>,
    /// WebSocket handshakes per second per client IP.
    pub handshake_rate: Option<RawRate>,
    /// Client addresses tracked at most (default 100000).
    pub table_size: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    /// Per second.
    pub rate: u64,
    /// At once; default `rate`.
    pub burst: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// Data messages per second.
    pub messages_per_second: Option<u64>,
    /// Payload bytes per second, e.g. "1MiB".
    pub bytes_per_second: Option<RawSize>,
    /// Messages at once; default `messages_per_second`.
    pub burst: Option<u64>,
    /// Bytes at once; default `bytes_per_second`.
    pub burst_bytes: Option<RawSize>,
    /// `client_to_upstream` (default) or `both`.
    pub direction: Option<String>,
    /// `throttle` (default: nothing is dropped) or `close`.
    pub action: Option<String>,
}

/// A size: a byte count or a string with a unit.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawSize {
    Bytes(u64),
    Text(String),
}
