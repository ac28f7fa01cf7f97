//! The metric families, registered once per instance in three groups: what tunnels count (frames,
//! messages, closes, violations, lifetimes), what requests count (handshakes, HTTP responses and
//! their latencies), and operations (upstream connects, endpoint gauges, listener refusals, reloads).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use super::names::*;

/// Latency buckets in seconds: 0.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Connection lifetimes: 1 s to 1 day.
const DURATION_BUCKETS: &[f64] = &[
    1.0,
    5.0,
    15.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4.0 * 3600.0,
    12.0 * 3600.0,
    86400.0,
];

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(vec.clone()))
        .expect("unique metric");
    vec
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let vec = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(vec.clone()))
        .expect("unique metric");
    vec
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let vec = HistogramVec::new(opts, labels).expect("valid metric");
    registry
        .register(Box::new(vec.clone()))
        .expect("unique metric");
    vec
}

/// Per route and direction: what flows through tunnels.
#[derive(Clone)]
pub(super) struct TunnelFamilies {
    pub frames: IntCounterVec,
    pub bytes: IntCounterVec,
    pub messages: IntCounterVec,
    pub active: IntGaugeVec,
    pub connections: IntCounterVec,
    pub duration: HistogramVec,
    pub violations: IntCounterVec,
    pub closes: IntCounterVec,
    pub pings_answered: IntCounterVec,
    pub pongs_dropped: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub admin_closes: IntCounterVec,
}

impl TunnelFamilies {
    pub fn register(r: &Registry) -> Self {
        TunnelFamilies {
            frames: counter(
                r,
                WS_FRAMES,
                "WebSocket frames received that passed validation, by sender and opcode.",
                &[ROUTE, DIRECTION, OPCODE],
            ),
            bytes: counter(
                r,
                WS_FRAME_PAYLOAD_BYTES,
                "Payload bytes of validated WebSocket frames, by sender and opcode.",
                &[ROUTE, DIRECTION, OPCODE],
            ),
            messages: counter(
                r,
                WS_MESSAGES,
                "Complete WebSocket data messages, by sender and type.",
                &[ROUTE, DIRECTION, TYPE],
            ),
            active: gauge(
                r,
                WS_CONNECTIONS_ACTIVE,
                "Open proxied WebSocket connections.",
                &[ROUTE],
            ),
            connections: counter(
                r,
                WS_CONNECTIONS,
                "WebSocket tunnels opened, by transport (h1: own connection, h2: HTTP/2 stream).",
                &[ROUTE, TRANSPORT],
            ),
            duration: histogram(
                r,
                WS_CONNECTION_DURATION,
                "Lifetime of WebSocket tunnels.",
                &[ROUTE],
                DURATION_BUCKETS,
            ),
            violations: counter(
                r,
                WS_PROTOCOL_VIOLATIONS,
                "RFC 6455 violations detected, by sender and kind.",
                &[ROUTE, DIRECTION, KIND],
            ),
            closes: counter(
                r,
                WS_CLOSES,
                "Close frames received, by sender and close code.",
                &[ROUTE, DIRECTION, CODE],
            ),
            pings_answered: counter(
                r,
                WS_PINGS_ANSWERED,
                "Pings answered by wsgate itself (not forwarded).",
                &[ROUTE, DIRECTION],
            ),
            pongs_dropped: counter(
                r,
                WS_PONGS_DROPPED,
                "Answers to pings dropped because the sender had too many pongs pending.",
                &[ROUTE, DIRECTION],
            ),
            rate_limited: counter(
                r,
                WS_RATE_LIMITED,
                "Times a tunnel's sender went over websocket.rate_limit: each throttle pause, or the close.",
                &[ROUTE, DIRECTION],
            ),
            admin_closes: counter(
                r,
                WS_ADMIN_CLOSES,
                "Tunnels closed through the admin API (POST /tunnels/{id}/close, /tunnels/close).",
                &[ROUTE],
            ),
        }
    }
}

/// Per route: upgrade results and the latency of handshakes and HTTP requests.
#[derive(Clone)]
pub(super) struct RequestFamilies {
    pub handshakes: IntCounterVec,
    pub handshake_duration: HistogramVec,
    pub http: IntCounterVec,
    pub http_duration: HistogramVec,
    pub limited: IntCounterVec,
    pub auth_duration: HistogramVec,
}

impl RequestFamilies {
    pub fn register(r: &Registry) -> Self {
        RequestFamilies {
            handshakes: counter(
                r,
                WS_HANDSHAKES,
                "WebSocket upgrade requests (HTTP/1.1 upgrades and HTTP/2 extended CONNECTs), by result.",
                &[ROUTE, RESULT, TRANSPORT],
            ),
            handshake_duration: histogram(
                r,
                WS_HANDSHAKE_DURATION,
                "Time from upgrade request received to 101 sent.",
                &[ROUTE],
                LATENCY_BUCKETS,
            ),
            http: counter(
                r,
                HTTP_REQUESTS,
                "HTTP requests answered, by method, status and protocol.",
                &[ROUTE, METHOD, STATUS, PROTOCOL],
            ),
            http_duration: histogram(
                r,
                HTTP_REQUEST_DURATION,
                "Time from request received to response head sent.",
                &[ROUTE],
                LATENCY_BUCKETS,
            ),
            limited: counter(
                r,
                LIMITED,
                "Requests refused by a per-client limit (429; 503 for a full table), by limit.",
                &[ROUTE, LIMIT],
            ),
            auth_duration: histogram(
                r,
                AUTH_DURATION,
                "Time the forward-auth service took to answer.",
                &[ROUTE],
                LATENCY_BUCKETS,
            ),
        }
    }
}

/// Upstream endpoints, listeners and reloads.
#[derive(Clone)]
pub(super) struct OperationFamilies {
    pub connect_errors: IntCounterVec,
    pub connections_rejected: IntCounterVec,
    pub config_reloads: IntCounterVec,
    pub http2_closed: IntCounterVec,
    pub endpoint_up: IntGaugeVec,
    pub endpoint_tunnels: IntGaugeVec,
}

impl OperationFamilies {
    pub fn register(r: &Registry) -> Self {
        OperationFamilies {
            connect_errors: counter(
                r,
                UPSTREAM_CONNECT_ERRORS,
                "Failed connection attempts to upstream endpoints.",
                &[UPSTREAM, ENDPOINT],
            ),
            connections_rejected: counter(
                r,
                CONNECTIONS_REJECTED,
                "Client connections refused because the listener was at max_connections.",
                &[LISTENER],
            ),
            config_reloads: counter(
                r,
                CONFIG_RELOADS,
                "Configuration reloads (SIGHUP), by result.",
                &[RESULT],
            ),
            http2_closed: counter(
                r,
                HTTP2_CONNECTIONS_CLOSED,
                "HTTP/2 client connections wsgate cut off for abuse or protocol errors, by reason.",
                &[LISTENER, REASON],
            ),
            endpoint_up: gauge(
                r,
                UPSTREAM_ENDPOINT_UP,
                "1 while the endpoint takes traffic, 0 while ejected or failing health checks.",
                &[UPSTREAM, ENDPOINT],
            ),
            endpoint_tunnels: gauge(
                r,
                UPSTREAM_ENDPOINT_TUNNELS,
                "Open WebSocket tunnels to the endpoint.",
                &[UPSTREAM, ENDPOINT],
            ),
        }
    }
}
