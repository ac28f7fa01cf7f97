//! Every metric name and label name wsgate exports, in one place (design.md "Metrics").
//! The README table and the Grafana dashboard use these exact strings.

pub const WS_FRAMES: &str = "wsgate_ws_frames_total";
pub const WS_FRAME_PAYLOAD_BYTES: &str = "wsgate_ws_frame_payload_bytes_total";
pub const WS_MESSAGES: &str = "wsgate_ws_messages_total";
pub const WS_CONNECTIONS_ACTIVE: &str = "wsgate_ws_connections_active";
pub const WS_CONNECTIONS: &str = "wsgate_ws_connections_total";
pub const WS_CONNECTION_DURATION: &str = "wsgate_ws_connection_duration_seconds";
pub const WS_HANDSHAKES: &str = "wsgate_ws_handshakes_total";
pub const WS_HANDSHAKE_DURATION: &str = "wsgate_ws_handshake_duration_seconds";
pub const WS_PROTOCOL_VIOLATIONS: &str = "wsgate_ws_protocol_violations_total";
pub const WS_CLOSES: &str = "wsgate_ws_closes_total";
pub const WS_PINGS_ANSWERED: &str = "wsgate_ws_pings_answered_total";
pub const WS_PONGS_DROPPED: &str = "wsgate_ws_pongs_dropped_total";
pub const WS_RATE_LIMITED: &str = "wsgate_ws_rate_limited_total";
pub const WS_ADMIN_CLOSES: &str = "wsgate_ws_admin_closes_total";
pub const LIMITED: &str = "wsgate_limited_total";
pub const AUTH_DURATION: &str = "wsgate_auth_duration_seconds";
pub const HTTP_REQUESTS: &str = "wsgate_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "wsgate_http_request_duration_seconds";
pub const UPSTREAM_CONNECT_ERRORS: &str = "wsgate_upstream_connect_errors_total";
pub const UPSTREAM_ENDPOINT_UP: &str = "wsgate_upstream_endpoint_up";
pub const UPSTREAM_ENDPOINT_TUNNELS: &str = "wsgate_upstream_endpoint_tunnels";
pub const CONFIG_RELOADS: &str = "wsgate_config_reloads_total";
pub const CONNECTIONS_REJECTED: &str = "wsgate_listener_connections_rejected_total";
pub const HTTP2_CONNECTIONS_CLOSED: &str = "wsgate_http2_connections_closed_total";

pub const ROUTE: &str = "route";
pub const DIRECTION: &str = "direction";
pub const OPCODE: &str = "opcode";
pub const TYPE: &str = "type";
pub const RESULT: &str = "result";
pub const KIND: &str = "kind";
pub const CODE: &str = "code";
pub const METHOD: &str = "method";
pub const STATUS: &str = "status";
pub const UPSTREAM: &str = "upstream";
pub const ENDPOINT: &str = "endpoint";
pub const LISTENER: &str = "listener";
pub const LIMIT: &str = "limit";
pub const TRANSPORT: &str = "transport";
pub const PROTOCOL: &str = "protocol";
pub const REASON: &str = "reason";

/// `transport` label values of WebSocket series: a tunnel on its own HTTP/1.1 connection, or a
/// stream of an HTTP/2 connection (RFC 8441).
pub const TRANSPORT_H1: &str = "h1";
pub const TRANSPORT_H2: &str = "h2";
/// `protocol` label values of HTTP series (ALPN spelling).
pub const PROTOCOL_HTTP1: &str = "http/1.1";
pub const PROTOCOL_H2: &str = "h2";
/// `reason` label values of `wsgate_http2_connections_closed_total`: why an HTTP/2 connection was
/// cut off. `rapid_reset`: `max_client_resets` streams reset after wsgate had started on them (the
/// slow form of CVE-2023-44487); `enhance_your_calm`: one of h2's own abuse limits, each a GOAWAY
/// ENHANCE_YOUR_CALM (streams reset before they were accepted, the fast form of rapid reset;
/// CONTINUATION floods; header lists past four times the limit; floods of empty DATA frames,
/// settings or pings; h2 names which only in the GOAWAY's debug data on the wire, not in the error
/// it ends the connection with); `protocol_error`: frames RFC 9113 forbids.
pub const HTTP2_CLOSE_REASONS: [&str; 3] = ["rapid_reset", "enhance_your_calm", "protocol_error"];

/// `route` label value where no route matched.
pub const NO_ROUTE: &str = "none";
/// `direction` label values: the sender of the frame.
pub const CLIENT_TO_UPSTREAM: &str = "client_to_upstream";
pub const UPSTREAM_TO_CLIENT: &str = "upstream_to_client";

/// Every `result` of `wsgate_ws_handshakes_total` a route can get; a request that matched no route
/// gets `no_route` under route `none`, never these.
pub const HANDSHAKE_RESULTS: [&str; 15] = [
    "ok",
    "bad_request",
    "version",
    "forbidden_origin",
    "upstream_unavailable",
    "upstream_rejected",
    "bad_accept",
    "bad_subprotocol",
    "bad_extension",
    "timeout",
    "over_capacity",
    "unauthorized",
    "forbidden",
    "limited",
    "auth_unavailable",
];
/// `limit` values of `wsgate_limited_total`: which per-client limit refused a request (429).
pub const LIMITS: [&str; 5] = [
    "client_tunnels_listener",
    "client_tunnels_route",
    "client_handshake_rate_listener",
    "client_handshake_rate_route",
    "client_table_full",
];
pub const NO_ROUTE_RESULT: &str = "no_route";
/// `result` values of `wsgate_config_reloads_total`.
pub const RELOAD_SUCCESS: &str = "success";
pub const RELOAD_FAILURE: &str = "failure";
