//! Prometheus metrics: the registry, the metric families, and per-route handles resolved once so that
//! the frame hot path only does atomic adds (rust-prometheus label lookups lock and hash).

pub mod names;

use std::sync::Arc;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::config::Config;
use names::*;
use wsgate_proto::close::RECEIVED_CODE_LABELS;
use wsgate_proto::frame::OpCode;
use wsgate_proto::tracker::Sender;
use wsgate_proto::violation::{Violation, DATA_AFTER_CLOSE};

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

/// All metric families of one wsgate instance, registered in its own registry (tests run many).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    ws_frames: IntCounterVec,
    ws_bytes: IntCounterVec,
    ws_messages: IntCounterVec,
    ws_active: IntGaugeVec,
    ws_connections: IntCounterVec,
    ws_duration: HistogramVec,
    ws_handshakes: IntCounterVec,
    ws_handshake_duration: HistogramVec,
    ws_violations: IntCounterVec,
    ws_closes: IntCounterVec,
    ws_pings_answered: IntCounterVec,
    ws_pongs_dropped: IntCounterVec,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    upstream_connect_errors: IntCounterVec,
    connections_rejected: IntCounterVec,
    config_reloads: IntCounterVec,
    endpoint_up: IntGaugeVec,
    endpoint_tunnels: IntGaugeVec,
}

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

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let ws_active = IntGaugeVec::new(
            Opts::new(WS_CONNECTIONS_ACTIVE, "Open proxied WebSocket connections."),
            &[ROUTE],
        )
        .expect("valid metric");
        r.register(Box::new(ws_active.clone()))
            .expect("unique metric");
        Metrics {
            ws_frames: counter(
                &r,
                WS_FRAMES,
                "WebSocket frames received that passed validation, by sender and opcode.",
                &[ROUTE, DIRECTION, OPCODE],
            ),
            ws_bytes: counter(
                &r,
                WS_FRAME_PAYLOAD_BYTES,
                "Payload bytes of validated WebSocket frames, by sender and opcode.",
                &[ROUTE, DIRECTION, OPCODE],
            ),
            ws_messages: counter(
                &r,
                WS_MESSAGES,
                "Complete WebSocket data messages, by sender and type.",
                &[ROUTE, DIRECTION, TYPE],
            ),
            ws_active,
            ws_connections: counter(&r, WS_CONNECTIONS, "WebSocket tunnels opened.", &[ROUTE]),
            ws_duration: histogram(
                &r,
                WS_CONNECTION_DURATION,
                "Lifetime of WebSocket tunnels.",
                &[ROUTE],
                DURATION_BUCKETS,
            ),
            ws_handshakes: counter(
                &r,
                WS_HANDSHAKES,
                "WebSocket upgrade requests, by result.",
                &[ROUTE, RESULT],
            ),
            ws_handshake_duration: histogram(
                &r,
                WS_HANDSHAKE_DURATION,
                "Time from upgrade request received to 101 sent.",
                &[ROUTE],
                LATENCY_BUCKETS,
            ),
            ws_violations: counter(
                &r,
                WS_PROTOCOL_VIOLATIONS,
                "RFC 6455 violations detected, by sender and kind.",
                &[ROUTE, DIRECTION, KIND],
            ),
            ws_closes: counter(
                &r,
                WS_CLOSES,
                "Close frames received, by sender and close code.",
                &[ROUTE, DIRECTION, CODE],
            ),
            ws_pings_answered: counter(
                &r,
                WS_PINGS_ANSWERED,
                "Pings answered by wsgate itself (not forwarded).",
                &[ROUTE, DIRECTION],
            ),
            ws_pongs_dropped: counter(
                &r,
                WS_PONGS_DROPPED,
                "Answers to pings dropped because the sender had too many pongs pending.",
                &[ROUTE, DIRECTION],
            ),
            http_requests: counter(
                &r,
                HTTP_REQUESTS,
                "HTTP requests answered, by method and status.",
                &[ROUTE, METHOD, STATUS],
            ),
            http_duration: histogram(
                &r,
                HTTP_REQUEST_DURATION,
                "Time from request received to response head sent.",
                &[ROUTE],
                LATENCY_BUCKETS,
            ),
            upstream_connect_errors: counter(
                &r,
                UPSTREAM_CONNECT_ERRORS,
                "Failed connection attempts to upstream endpoints.",
                &[UPSTREAM, ENDPOINT],
            ),
            connections_rejected: counter(
                &r,
                CONNECTIONS_REJECTED,
                "Client connections refused because the listener was at max_connections.",
                &[LISTENER],
            ),
            config_reloads: counter(
                &r,
                CONFIG_RELOADS,
                "Configuration reloads (SIGHUP), by result.",
                &[RESULT],
            ),
            endpoint_up: gauge(
                &r,
                UPSTREAM_ENDPOINT_UP,
                "1 while the endpoint takes traffic, 0 while ejected or failing health checks.",
                &[UPSTREAM, ENDPOINT],
            ),
            endpoint_tunnels: gauge(
                &r,
                UPSTREAM_ENDPOINT_TUNNELS,
                "Open WebSocket tunnels to the endpoint.",
                &[UPSTREAM, ENDPOINT],
            ),
            registry: r,
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
            self.endpoint_up.with_label_values(&[upstream, endpoint]),
            self.endpoint_tunnels
                .with_label_values(&[upstream, endpoint]),
        )
    }

    /// Creates at 0 every series whose label values `config` fixes (Prometheus "avoid missing
    /// metrics"): a panel then shows 0 instead of "No data", and rate() sees the first event, which a
    /// series born at 1 hides. Called at start and after each reload; per-route series are created by
    /// [`Metrics::route`], endpoint gauges by the upstream. Series of removed entries stay.
    pub fn preset(&self, config: &Config) {
        for result in [RELOAD_SUCCESS, RELOAD_FAILURE] {
            self.config_reloads.with_label_values(&[result]);
        }
        for listener in &config.listeners {
            self.connections_rejected
                .with_label_values(&[&listener.name]);
        }
        for upstream in &config.upstreams {
            for endpoint in &upstream.endpoints {
                self.upstream_connect_errors
                    .with_label_values(&[&upstream.name, endpoint]);
            }
        }
        self.ws_handshakes
            .with_label_values(&[NO_ROUTE, NO_ROUTE_RESULT]);
    }

    pub fn config_reload(&self, result: &str) {
        self.config_reloads.with_label_values(&[result]).inc();
    }

    pub fn connection_rejected(&self, listener: &str) {
        self.connections_rejected
            .with_label_values(&[listener])
            .inc();
    }

    /// Resolves every per-route handle once; connections share the result. The route's rare-event
    /// series (handshake results, violations, closes) are created at 0 here too.
    pub fn route(&self, route: &str) -> Arc<RouteMetrics> {
        for result in HANDSHAKE_RESULTS {
            self.ws_handshakes.with_label_values(&[route, result]);
        }
        for sender in [Sender::Client, Sender::Upstream] {
            let dir = direction_label(sender);
            let kinds = Violation::ALL
                .into_iter()
                .filter(|v| v.possible_from(sender))
                .map(Violation::kind)
                .chain([DATA_AFTER_CLOSE]);
            for kind in kinds {
                self.ws_violations.with_label_values(&[route, dir, kind]);
            }
            for code in RECEIVED_CODE_LABELS {
                self.ws_closes.with_label_values(&[route, dir, code]);
            }
        }
        let direction = |sender: Sender| DirectionMetrics {
            frames: OpCode::ALL.map(|op| {
                self.ws_frames
                    .with_label_values(&[route, direction_label(sender), op.label()])
            }),
            bytes: OpCode::ALL.map(|op| {
                self.ws_bytes
                    .with_label_values(&[route, direction_label(sender), op.label()])
            }),
            text_messages: self.ws_messages.with_label_values(&[
                route,
                direction_label(sender),
                "text",
            ]),
            binary_messages: self.ws_messages.with_label_values(&[
                route,
                direction_label(sender),
                "binary",
            ]),
            pings_answered: self
                .ws_pings_answered
                .with_label_values(&[route, direction_label(sender)]),
            pongs_dropped: self
                .ws_pongs_dropped
                .with_label_values(&[route, direction_label(sender)]),
        };
        Arc::new(RouteMetrics {
            route: route.to_owned(),
            metrics: self.clone(),
            client: direction(Sender::Client),
            upstream: direction(Sender::Upstream),
            active: self.ws_active.with_label_values(&[route]),
            connections: self.ws_connections.with_label_values(&[route]),
            duration: self.ws_duration.with_label_values(&[route]),
            handshake_duration: self.ws_handshake_duration.with_label_values(&[route]),
            http_duration: self.http_duration.with_label_values(&[route]),
        })
    }

    /// Per-request (never per-frame) label lookup.
    pub fn handshake(&self, route: &str, result: &str) {
        self.ws_handshakes.with_label_values(&[route, result]).inc();
    }

    pub fn http_request(&self, route: &str, method: &http::Method, status: http::StatusCode) {
        self.http_requests
            .with_label_values(&[route, method_label(method), status.as_str()])
            .inc();
    }

    pub fn upstream_connect_error(&self, upstream: &str, endpoint: &str) {
        self.upstream_connect_errors
            .with_label_values(&[upstream, endpoint])
            .inc();
    }
}

/// Handles of one route, resolved when the configuration is loaded.
pub struct RouteMetrics {
    pub route: String,
    metrics: Metrics,
    pub client: DirectionMetrics,
    pub upstream: DirectionMetrics,
    pub active: IntGauge,
    pub connections: IntCounter,
    pub duration: Histogram,
    pub handshake_duration: Histogram,
    pub http_duration: Histogram,
}

impl RouteMetrics {
    pub fn direction(&self, sender: Sender) -> &DirectionMetrics {
        match sender {
            Sender::Client => &self.client,
            Sender::Upstream => &self.upstream,
        }
    }

    /// Rare events (violations, closes) take a label lookup; frames never do.
    pub fn violation(&self, sender: Sender, kind: &str) {
        self.metrics
            .ws_violations
            .with_label_values(&[&self.route, direction_label(sender), kind])
            .inc();
    }

    pub fn close(&self, sender: Sender, code_label: &str) {
        self.metrics
            .ws_closes
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
