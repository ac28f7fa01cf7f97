//! Prometheus metrics: the registry, the metric families, and per-route handles resolved once so that
//! the frame hot path only does atomic adds (rust-prometheus label lookups lock and hash).

mod families;
pub mod names;

use std::sync::Arc;

use prometheus::{Histogram, IntCounter, IntGauge, Registry, TextEncoder};

use crate::config::Config;
use families::{OperationFamilies, RequestFamilies, TunnelFamilies};
use names::*;
use wsgate_proto::close::RECEIVED_CODE_LABELS;
use wsgate_proto::frame::OpCode;
use wsgate_proto::tracker::Sender;
use wsgate_proto::violation::{Violation, DATA_AFTER_CLOSE};

/// All metric families of one wsgate instance, registered in its own registry (tests run many).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    tunnel: TunnelFamilies,
    requests: RequestFamilies,
    ops: OperationFamilies,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        Metrics {
            tunnel: TunnelFamilies::register(&registry),
            requests: RequestFamilies::register(&registry),
            ops: OperationFamilies::register(&registry),
            registry,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }

    /// The `up` and `tunnels` gauges of one endpoint, resolved once per upstream generation.
    pub fn endpoint_gauges(&self, upstream: &str, endpoint: &str) -> (IntGauge, IntGauge) {
        (
            self.ops
                .endpoint_up
                .with_label_values(&[upstream, endpoint]),
            self.ops
                .endpoint_tunnels
                .with_label_values(&[upstream, endpoint]),
        )
    }

    /// Creates at 0 every series whose label values `config` fixes (Prometheus "avoid missing
    /// metrics"): a panel then shows 0 instead of "No data", and rate() sees the first event, which a
    /// series born at 1 hides. Called at start and after each reload; per-route series are created by
    /// [`Metrics::route`], endpoint gauges by the upstream. Series of removed entries stay.
    pub fn preset(&self, config: &Config) {
        for result in [RELOAD_SUCCESS, RELOAD_FAILURE] {
            self.ops.config_reloads.with_label_values(&[result]);
        }
        for listener in &config.listeners {
            self.ops
                .connections_rejected
                .with_label_values(&[&listener.name]);
            if listener.http2.is_some() {
                for reason in HTTP2_CLOSE_REASONS {
                    self.ops
                        .http2_closed
                        .with_label_values(&[&listener.name, reason]);
                }
            }
        }
        for upstream in &config.upstreams {
            for endpoint in &upstream.endpoints {
                self.ops
                    .connect_errors
                    .with_label_values(&[&upstream.name, endpoint]);
            }
        }
        for transport in Transport::ALL {
            self.requests.handshakes.with_label_values(&[
                NO_ROUTE,
                NO_ROUTE_RESULT,
                transport.label(),
            ]);
        }
    }

    /// An HTTP/2 connection cut off, by one of `names::HTTP2_CLOSE_REASONS`.
    pub fn http2_closed(&self, listener: &str, reason: &str) {
        self.ops
            .http2_closed
            .with_label_values(&[listener, reason])
            .inc();
    }

    pub fn config_reload(&self, result: &str) {
        self.ops.config_reloads.with_label_values(&[result]).inc();
    }

    pub fn connection_rejected(&self, listener: &str) {
        self.ops
            .connections_rejected
            .with_label_values(&[listener])
            .inc();
    }

    /// Resolves every per-route handle once; connections share the result. The route's rare-event
    /// series (handshake results, violations, closes) are created at 0 here too.
    pub fn route(&self, route: &str) -> Arc<RouteMetrics> {
        let handshakes = Transport::ALL.map(|transport| {
            HANDSHAKE_RESULTS.map(|result| {
                self.requests
                    .handshakes
                    .with_label_values(&[route, result, transport.label()])
            })
        });
        for sender in [Sender::Client, Sender::Upstream] {
            let dir = direction_label(sender);
            let kinds = Violation::ALL
                .into_iter()
                .filter(|v| v.possible_from(sender))
                .map(Violation::kind)
                .chain([DATA_AFTER_CLOSE]);
            for kind in kinds {
                self.tunnel
                    .violations
                    .with_label_values(&[route, dir, kind]);
            }
            for code in RECEIVED_CODE_LABELS {
                self.tunnel.closes.with_label_values(&[route, dir, code]);
            }
        }
        let direction = |sender: Sender| DirectionMetrics {
            frames: OpCode::ALL.map(|op| {
                self.tunnel
                    .frames
                    .with_label_values(&[route, direction_label(sender), op.label()])
            }),
            bytes: OpCode::ALL.map(|op| {
                self.tunnel
                    .bytes
                    .with_label_values(&[route, direction_label(sender), op.label()])
            }),
            text_messages: self.tunnel.messages.with_label_values(&[
                route,
                direction_label(sender),
                "text",
            ]),
            binary_messages: self.tunnel.messages.with_label_values(&[
                route,
                direction_label(sender),
                "binary",
            ]),
            pings_answered: self
                .tunnel
                .pings_answered
                .with_label_values(&[route, direction_label(sender)]),
            pongs_dropped: self
                .tunnel
                .pongs_dropped
                .with_label_values(&[route, direction_label(sender)]),
            rate_limited: self
                .tunnel
                .rate_limited
                .with_label_values(&[route, direction_label(sender)]),
        };
        let limited = LIMITS.map(|limit| self.requests.limited.with_label_values(&[route, limit]));
        // At 0 from the start; counted by `admin_close`.
        self.tunnel.admin_closes.with_label_values(&[route]);
        Arc::new(RouteMetrics {
            route: route.into(),
            metrics: self.clone(),
            client: direction(Sender::Client),
            upstream: direction(Sender::Upstream),
            handshakes,
            upgraded: [
                self.requests
                    .http
                    .with_label_values(&[route, "GET", "101", PROTOCOL_HTTP1]),
                self.requests
                    .http
                    .with_label_values(&[route, "CONNECT", "200", PROTOCOL_H2]),
            ],
            active: self.tunnel.active.with_label_values(&[route]),
            connections: Transport::ALL.map(|t| {
                self.tunnel
                    .connections
                    .with_label_values(&[route, t.label()])
            }),
            duration: self.tunnel.duration.with_label_values(&[route]),
            handshake_duration: self.requests.handshake_duration.with_label_values(&[route]),
            http_duration: self.requests.http_duration.with_label_values(&[route]),
            limited,
            auth_duration: self.requests.auth_duration.with_label_values(&[route]),
        })
    }

    /// Per-request (never per-frame) label lookup.
    pub fn handshake(&self, route: &str, transport: Transport, result: &str) {
        self.requests
            .handshakes
            .with_label_values(&[route, result, transport.label()])
            .inc();
    }

    pub fn http_request(
        &self,
        route: &str,
        method: &http::Method,
        status: http::StatusCode,
        transport: Transport,
    ) {
        let labels = [
            route,
            method_label(method),
            status.as_str(),
            transport.protocol_label(),
        ];
        self.requests.http.with_label_values(&labels).inc();
    }

    /// A tunnel closed through the admin API (a lookup: never per frame).
    pub fn admin_close(&self, route: &str) {
        self.tunnel.admin_closes.with_label_values(&[route]).inc();
    }

    pub fn upstream_connect_error(&self, upstream: &str, endpoint: &str) {
        self.ops
            .connect_errors
            .with_label_values(&[upstream, endpoint])
            .inc();
    }
}

/// How a client reached wsgate: HTTP/1.1 (a tunnel owns its connection) or HTTP/2 (a tunnel is one
/// stream of a connection, RFC 8441).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    H1 = 0,
    H2 = 1,
}

impl Transport {
    pub const ALL: [Transport; 2] = [Transport::H1, Transport::H2];

    /// The `transport` label of WebSocket series.
    pub fn label(self) -> &'static str {
        match self {
            Transport::H1 => TRANSPORT_H1,
            Transport::H2 => TRANSPORT_H2,
        }
    }

    /// The `protocol` label of HTTP series and the access log.
    pub fn protocol_label(self) -> &'static str {
        match self {
            Transport::H1 => PROTOCOL_HTTP1,
            Transport::H2 => PROTOCOL_H2,
        }
    }
}

/// Handles of one route, resolved when the configuration is loaded.
pub struct RouteMetrics {
    /// Shared with the route's tunnels' entries in `/tunnels`.
    pub route: Arc<str>,
    metrics: Metrics,
    pub client: DirectionMetrics,
    pub upstream: DirectionMetrics,
    pub active: IntGauge,
    /// `wsgate_ws_connections_total` by transport, in the order of `Transport::ALL`.
    connections: [IntCounter; 2],
    pub duration: Histogram,
    pub handshake_duration: Histogram,
    /// `wsgate_ws_handshakes_total` by result, in the order of `names::HANDSHAKE_RESULTS`.
    handshakes: [[IntCounter; HANDSHAKE_RESULTS.len()]; 2],
    /// `wsgate_http_requests_total` of the route's upgrades (GET 101 over HTTP/1.1, CONNECT 200 over
    /// HTTP/2): one per tunnel, resolved once.
    upgraded: [IntCounter; 2],
    pub http_duration: Histogram,
    /// `wsgate_limited_total` by limit, in the order of `names::LIMITS`.
    limited: [IntCounter; LIMITS.len()],
    /// Forward-auth latency.
    pub auth_duration: Histogram,
}

impl RouteMetrics {
    /// Counts one upgrade by its `result` (one of `names::HANDSHAKE_RESULTS`): no label lookup.
    pub fn handshake(&self, transport: Transport, result: &str) {
        match HANDSHAKE_RESULTS.iter().position(|r| *r == result) {
            Some(i) => self.handshakes[transport as usize][i].inc(),
            // Not a route's result (a bug): counted all the same, by lookup.
            None => self.metrics.handshake(&self.route, transport, result),
        }
    }

    /// Counts one tunnel opened.
    pub fn connection_opened(&self, transport: Transport) {
        self.connections[transport as usize].inc();
    }

    /// Counts one refusal by a per-client limit (one of `names::LIMITS`).
    pub fn limited(&self, limit: &str) {
        if let Some(i) = LIMITS.iter().position(|l| *l == limit) {
            self.limited[i].inc();
        }
    }

    /// Counts one HTTP response; the answer that opens a tunnel (a 101 to a GET, a 200 to a
    /// CONNECT) without a label lookup.
    pub fn http_request(
        &self,
        method: &http::Method,
        status: http::StatusCode,
        transport: Transport,
    ) {
        let opened = match transport {
            Transport::H1 => {
                status == http::StatusCode::SWITCHING_PROTOCOLS && method == http::Method::GET
            }
            Transport::H2 => status == http::StatusCode::OK && method == http::Method::CONNECT,
        };
        if opened {
            self.upgraded[transport as usize].inc();
        } else {
            self.metrics
                .http_request(&self.route, method, status, transport);
        }
    }

    pub fn direction(&self, sender: Sender) -> &DirectionMetrics {
        match sender {
            Sender::Client => &self.client,
            Sender::Upstream => &self.upstream,
        }
    }

    /// Rare events (violations, closes) take a label lookup; frames never do.
    pub fn violation(&self, sender: Sender, kind: &str) {
        self.metrics
            .tunnel
            .violations
            .with_label_values(&[&self.route, direction_label(sender), kind])
            .inc();
    }

    pub fn close(&self, sender: Sender, code_label: &str) {
        self.metrics
            .tunnel
            .closes
            .with_label_values(&[&self.route, direction_label(sender), code_label])
            .inc();
    }
}

/// Counters of frames sent by one side of a route.
pub struct DirectionMetrics {
    frames: [IntCounter; 6],
    bytes: [IntCounter; 6],
    text_messages: IntCounter,
    binary_messages: IntCounter,
    pub pings_answered: IntCounter,
    /// Answers dropped at the pong queue's bound (a sender that pings faster than it reads).
    pub pongs_dropped: IntCounter,
    /// Each time the sender went over `websocket.rate_limit`.
    pub rate_limited: IntCounter,
}

/// Frames and messages counted locally during one walk of a read buffer, then added to the
/// counters at once: a few atomic adds per read instead of three per frame.
#[derive(Debug, Default)]
pub struct FrameTally {
    frames: [u64; 6],
    bytes: [u64; 6],
    text_messages: u64,
    binary_messages: u64,
}

impl FrameTally {
    #[inline]
    pub fn frame(&mut self, opcode: OpCode, payload_len: u64) {
        self.frames[opcode.index()] += 1;
        self.bytes[opcode.index()] += payload_len;
    }

    #[inline]
    pub fn message(&mut self, opcode: OpCode) {
        match opcode {
            OpCode::Text => self.text_messages += 1,
            _ => self.binary_messages += 1,
        }
    }
}

impl DirectionMetrics {
    /// Adds what one walk counted.
    pub fn record(&self, tally: &FrameTally) {
        for i in 0..6 {
            if tally.frames[i] > 0 {
                self.frames[i].inc_by(tally.frames[i]);
                self.bytes[i].inc_by(tally.bytes[i]);
            }
        }
        if tally.text_messages > 0 {
            self.text_messages.inc_by(tally.text_messages);
        }
        if tally.binary_messages > 0 {
            self.binary_messages.inc_by(tally.binary_messages);
        }
    }
}

pub fn direction_label(sender: Sender) -> &'static str {
    match sender {
        Sender::Client => CLIENT_TO_UPSTREAM,
        Sender::Upstream => UPSTREAM_TO_CLIENT,
    }
}

/// Bounded `method` label: the RFC 9110 methods, else `other`.
pub fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::CONNECT => "CONNECT",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::TRACE => "TRACE",
        http::Method::PATCH => "PATCH",
        _ => "other",
    }
}
