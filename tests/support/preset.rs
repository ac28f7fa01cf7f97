//! What a scrape shows before any traffic: every series whose label values the config fixes, at 0
//! (design.md: metrics known from the config exist from start and after reloads). The label values
//! are written out from design.md and the README tables, not taken from wsgate's own lists.

use super::{metric, series_count};

/// The parts of a config that fix label values.
pub struct Known<'a> {
    pub listeners: &'a [&'a str],
    /// Upstream name and its endpoints.
    pub upstreams: &'a [(&'a str, &'a [&'a str])],
    pub routes: &'a [&'a str],
    /// Expected `wsgate_config_reloads_total` for `success` and `failure`.
    pub reloads: [f64; 2],
}

/// design.md's results, `over_capacity` (README, `websocket.max_connections`), and the access
/// checks' (README "Access control").
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

/// The README's `limit` values of `wsgate_limited_total`.
const LIMITS: [&str; 5] = [
    "client_tunnels_listener",
    "client_tunnels_route",
    "client_handshake_rate_listener",
    "client_handshake_rate_route",
    "client_table_full",
];

/// The README's frame table kinds that either side can commit.
const BOTH_KINDS: [&str; 13] = [
    "reserved_opcode",
    "reserved_bits",
    "control_too_long",
    "fragmented_control",
    "bad_continuation",
    "invalid_utf8",
    "bad_close",
    "non_minimal_length",
    "bad_length",
    "frame_too_big",
    "message_too_big",
    "bad_compression",
    "data_after_close",
];

/// The codes a valid close frame carries (by class for 3000-4999), and 1005 for an empty one.
pub const CLOSE_CODES: [&str; 15] = [
    "1000", "1001", "1002", "1003", "1005", "1007", "1008", "1009", "1010", "1011", "1012", "1013",
    "1014", "3xxx", "4xxx",
];

const C2U: &str = "client_to_upstream";
const U2C: &str = "upstream_to_client";

/// Every `transport` of the WebSocket series.
const TRANSPORTS: [&str; 2] = ["h1", "h2"];

fn expect(text: &str, name: &str, labels: &[(&str, &str)], want: f64) {
    assert_eq!(
        metric(text, name, labels),
        Some(want),
        "{name}{labels:?} should be exported at {want}"
    );
}

/// Asserts that every known series exists at its idle value (reloads as given), and that no other series of these
/// families exists (the label sets stay bounded by the config).
pub fn assert_known_series(text: &str, known: &Known) {
    for (result, want) in ["success", "failure"].into_iter().zip(known.reloads) {
        expect(
            text,
            "wsgate_config_reloads_total",
            &[("result", result)],
            want,
        );
    }
    for listener in known.listeners {
        let labels = [("listener", *listener)];
        expect(
            text,
            "wsgate_listener_connections_rejected_total",
            &labels,
            0.0,
        );
    }
    let mut endpoints = 0;
    for (upstream, list) in known.upstreams {
        for endpoint in *list {
            let labels = [("upstream", *upstream), ("endpoint", *endpoint)];
            expect(text, "wsgate_upstream_connect_errors_total", &labels, 0.0);
            expect(text, "wsgate_upstream_endpoint_up", &labels, 1.0);
            expect(text, "wsgate_upstream_endpoint_tunnels", &labels, 0.0);
            endpoints += 1;
        }
    }
    let handshakes = "wsgate_ws_handshakes_total";
    for transport in TRANSPORTS {
        expect(
            text,
            handshakes,
            &[
                ("route", "none"),
                ("result", "no_route"),
                ("transport", transport),
            ],
            0.0,
        );
    }
    for route in known.routes {
        for result in HANDSHAKE_RESULTS {
            for transport in TRANSPORTS {
                let labels = [
                    ("route", *route),
                    ("result", result),
                    ("transport", transport),
                ];
                expect(text, handshakes, &labels, 0.0);
            }
        }
        for (direction, own) in [(C2U, "unmasked_frame"), (U2C, "masked_frame")] {
            for kind in BOTH_KINDS.into_iter().chain([own]) {
                let labels = [("route", *route), ("direction", direction), ("kind", kind)];
                expect(text, "wsgate_ws_protocol_violations_total", &labels, 0.0);
            }
            for code in CLOSE_CODES {
                let labels = [("route", *route), ("direction", direction), ("code", code)];
                expect(text, "wsgate_ws_closes_total", &labels, 0.0);
            }
        }
        expect(
            text,
            "wsgate_ws_connections_active",
            &[("route", route)],
            0.0,
        );
        for limit in LIMITS {
            let labels = [("route", *route), ("limit", limit)];
            expect(text, "wsgate_limited_total", &labels, 0.0);
        }
        for direction in [C2U, U2C] {
            let labels = [("route", *route), ("direction", direction)];
            expect(text, "wsgate_ws_rate_limited_total", &labels, 0.0);
        }
    }
    let routes = known.routes.len();
    let counts = [
        ("wsgate_config_reloads_total", 2),
        (
            "wsgate_listener_connections_rejected_total",
            known.listeners.len(),
        ),
        ("wsgate_upstream_connect_errors_total", endpoints),
        (
            handshakes,
            TRANSPORTS.len() * (routes * HANDSHAKE_RESULTS.len() + 1),
        ),
        (
            "wsgate_ws_protocol_violations_total",
            routes * 2 * (BOTH_KINDS.len() + 1),
        ),
        ("wsgate_ws_closes_total", routes * 2 * CLOSE_CODES.len()),
        ("wsgate_limited_total", routes * LIMITS.len()),
        ("wsgate_ws_rate_limited_total", routes * 2),
    ];
    for (name, want) in counts {
        assert_eq!(series_count(text, name), want, "series of {name}");
    }
}
