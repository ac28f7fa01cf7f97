#!/usr/bin/env python3
"""Writes grafana/wsgate.json: the wsgate dashboard. Run it after changing a panel:
    python3 scripts/dashboard.py
Every query filters on $instance and $route (where the metric has a route) and uses rate() over
$__rate_interval for counters and histogram_quantile() over summed bucket rates for latencies."""
import json
import pathlib

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'instance=~"$instance", route=~"$route"'
INST = 'instance=~"$instance"'
RATE = "[$__rate_interval]"


def q(expr, legend):
    return {"expr": expr, "legendFormat": legend}


def quantiles(metric, sel):
    return [
        q(f"histogram_quantile({p}, sum by (le) (rate({metric}_bucket{{{sel}}}{RATE})))", f"p{int(p * 100)}")
        for p in (0.5, 0.99)
    ]


ROWS = [
    ("Connections", "How many WebSocket tunnels are open, how fast new ones arrive, how long they live.", [
        ("Active WebSocket connections", "Open tunnels per route.", "short",
         [q(f"sum by (route) (wsgate_ws_connections_active{{{SEL}}})", "{{route}}")]),
        ("New WebSocket connections /s", "Tunnels opened per second.", "ops",
         [q(f"sum by (route) (rate(wsgate_ws_connections_total{{{SEL}}}{RATE}))", "{{route}}")]),
        ("New WebSocket connections /s by transport", "h1: a tunnel on its own HTTP/1.1 connection; h2: a stream of an HTTP/2 connection (RFC 8441).", "ops",
         [q(f"sum by (transport) (rate(wsgate_ws_connections_total{{{SEL}}}{RATE}))", "{{transport}}")]),
        ("Connection duration p50 / p99", "How long tunnels live (from their ends).", "s",
         quantiles("wsgate_ws_connection_duration_seconds", SEL)),
    ]),
    ("Handshakes", "Upgrade requests and why they failed; how long a good one takes.", [
        ("Handshakes /s by result", "ok, or why the upgrade was refused (bad_request, version, forbidden_origin, no_route, upstream_*, bad_*, timeout, over_capacity).", "ops",
         [q(f"sum by (result) (rate(wsgate_ws_handshakes_total{{{SEL}}}{RATE}))", "{{result}}")]),
        ("Handshake latency p50 / p99", "Upgrade request received to 101 sent, upstream connect included.", "s",
         quantiles("wsgate_ws_handshake_duration_seconds", SEL)),
    ]),
    ("Traffic", "What flows through the tunnels, per direction and opcode.", [
        ("Frames /s by opcode and direction", "Validated frames received from each side.", "ops",
         [q(f"sum by (direction, opcode) (rate(wsgate_ws_frames_total{{{SEL}}}{RATE}))", "{{direction}} {{opcode}}")]),
        ("Payload bytes /s by direction", "Frame payload bytes received from each side.", "Bps",
         [q(f"sum by (direction) (rate(wsgate_ws_frame_payload_bytes_total{{{SEL}}}{RATE}))", "{{direction}}")]),
        ("Messages /s", "Complete data messages, by sender and type.", "ops",
         [q(f"sum by (direction, type) (rate(wsgate_ws_messages_total{{{SEL}}}{RATE}))", "{{direction}} {{type}}")]),
        ("Pings answered /s", "Client pings wsgate answered itself (ping: answer).", "ops",
         [q(f"sum by (route) (rate(wsgate_ws_pings_answered_total{{{SEL}}}{RATE}))", "{{route}}")]),
    ]),
    ("Protocol", "RFC 6455 violations and how connections end.", [
        ("Protocol violations /s by kind", "Who broke which rule; each got its close code (1002/1007/1009).", "ops",
         [q(f"sum by (direction, kind) (rate(wsgate_ws_protocol_violations_total{{{SEL}}}{RATE}))", "{{direction}} {{kind}}")]),
        ("Close codes /s", "Close frames received, by sender and code.", "ops",
         [q(f"sum by (direction, code) (rate(wsgate_ws_closes_total{{{SEL}}}{RATE}))", "{{direction}} {{code}}")]),
        ("Tunnels closed through the admin API", "POST /tunnels/{id}/close and /tunnels/close in the range, by route.", "short",
         [q(f"sum by (route) (increase(wsgate_ws_admin_closes_total{{{SEL}}}[$__range]))", "{{route}}")]),
    ]),
    ("HTTP", "Every HTTP response wsgate sent (upgrades included, as 101).", [
        ("HTTP requests /s by status", "Responses by status code.", "ops",
         [q(f"sum by (status) (rate(wsgate_http_requests_total{{{SEL}}}{RATE}))", "{{status}}")]),
        ("HTTP requests /s by protocol", "http/1.1 or h2, as the client spoke it (upstreams are HTTP/1.1).", "ops",
         [q(f"sum by (protocol) (rate(wsgate_http_requests_total{{{SEL}}}{RATE}))", "{{protocol}}")]),
        ("HTTP latency p50 / p99", "Request received to response head sent.", "s",
         quantiles("wsgate_http_request_duration_seconds", SEL)),
        ("HTTP/2 connections cut off /s", "Clients cut off: rapid_reset (streams reset after wsgate started on them), enhance_your_calm (h2's flood limits: resets before accept, CONTINUATION floods, huge header lists), protocol_error.", "ops",
         [q(f"sum by (listener, reason) (rate(wsgate_http2_connections_closed_total{{{INST}}}{RATE}))", "{{listener}} {{reason}}")]),
    ]),
    ("Upstreams", "Are the backends reachable and healthy; where do tunnels go.", [
        ("Upstream connect errors /s", "Failed connects (refused, timed out, TLS) per endpoint.", "ops",
         [q(f"sum by (upstream, endpoint) (rate(wsgate_upstream_connect_errors_total{{{INST}}}{RATE}))", "{{upstream}} {{endpoint}}")]),
        ("Endpoint health", "1 while an endpoint takes traffic, 0 while ejected or failing its health check.", "short",
         [q(f"min by (upstream, endpoint) (wsgate_upstream_endpoint_up{{{INST}}})", "{{upstream}} {{endpoint}}")]),
        ("Tunnels per endpoint", "Open tunnels on each endpoint (what least_connections balances).", "short",
         [q(f"sum by (upstream, endpoint) (wsgate_upstream_endpoint_tunnels{{{INST}}})", "{{upstream}} {{endpoint}}")]),
    ]),
    ("Operations", "Configuration reloads and refused connections.", [
        ("Config reloads", "SIGHUP reloads in the range, by result.", "short",
         [q(f"sum by (result) (increase(wsgate_config_reloads_total{{{INST}}}[$__range]))", "{{result}}")]),
        ("Connections refused at max_connections /s", "Listeners at their limit answer 503.", "ops",
         [q(f"sum by (listener) (rate(wsgate_listener_connections_rejected_total{{{INST}}}{RATE}))", "{{listener}}")]),
    ]),
]


def variable(name, label, query):
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "definition": query, "query": {"query": query, "refId": name},
        "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2, "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


def build():
    panels, y, pid = [], 0, 1
    for title, description, row in ROWS:
        panels.append({"type": "row", "id": pid, "title": title, "description": description,
                       "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid, y = pid + 1, y + 1
        width = 24 // len(row)
        for i, (ptitle, pdesc, unit, targets) in enumerate(row):
            panels.append({
                "type": "timeseries", "id": pid, "title": ptitle, "description": pdesc, "datasource": DS,
                "gridPos": {"h": 8, "w": width, "x": i * width, "y": y},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
                "targets": [dict(t, refId=chr(65 + j), datasource=DS) for j, t in enumerate(targets)],
            })
            pid += 1
        y += 8
    return {
        "title": "wsgate", "uid": "wsgate", "description": "wsgate: WebSocket-aware reverse proxy",
        "tags": ["wsgate", "websocket"], "schemaVersion": 39, "version": 1, "editable": True,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "10s", "timezone": "",
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0},
            variable("instance", "Instance", "label_values(wsgate_ws_connections_active, instance)"),
            variable("route", "Route", 'label_values(wsgate_ws_connections_active{instance=~"$instance"}, route)'),
        ]},
        "annotations": {"list": []},
        "panels": panels,
    }


if __name__ == "__main__":
    out = pathlib.Path(__file__).resolve().parent.parent / "grafana" / "wsgate.json"
    out.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {out}")
