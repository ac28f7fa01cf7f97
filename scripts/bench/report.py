#!/usr/bin/env python3
"""Turns scripts/bench.sh's results.jsonl into the table of the README's Performance section."""
import json
import os
import statistics
import sys
from collections import defaultdict

import report_admin

PROXIES = ["wsgate", "nginx", "haproxy"]
TARGETS = ["direct"] + PROXIES
# The same proxies terminating TLS (wss://) toward the same plain echo backend.
TLS_PROXIES = [p + "-tls" for p in PROXIES]
# HTTP/2 (ALPN h2 on the same TLS): WebSockets over RFC 8441 streams and plain requests; nginx-h2 runs
# the plain requests only (it has no RFC 8441). wsgate-h1 is wsgate-h2's config with `http2: false`,
# loaded over HTTP/1.1: the baseline.
H2_PROXIES = [p + "-h2" for p in PROXIES]
H2_BASELINE = "wsgate-h1"
# The field of each mode's line that is zero when the measurement got nothing.
EMPTY_KEY = {"throughput": "messages", "latency": "samples", "idle": "open", "handshakes": "sessions",
             "requests": "succeeded"}
# The auth runs' targets (scenario "auth"): the same wsgate route with each kind of `auth`.
AUTH_MODES = [("wsgate", "none"), ("wsgate-jwt-es256", "jwt ES256"), ("wsgate-jwt-rs256", "jwt RS256"),
              ("wsgate-forward", "forward auth")]


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    rows, admin_rows = report_admin.split(rows)
    tput = defaultdict(list)
    latency_runs, handshake_runs, handshake_cost = defaultdict(list), defaultdict(list), defaultdict(list)
    auth_runs = defaultdict(list)
    idle = {}
    negotiated = defaultdict(set)
    h2_rows = []
    for r in rows:
        if "tls" in r and r["mode"] != "requests":  # h2load's own TLS fields are shown in its section
            negotiated[r["target"]].add(
                f"{r['tls']} ({r['tls_kx']})" if r["tls"] and r.get("tls_kx") else str(r["tls"]))
        if r["target"] in H2_PROXIES or r["target"] == H2_BASELINE:
            h2_rows.append(r)
        elif r["mode"] == "throughput":
            tput[(r["connections"], r["size"], r["target"])].append(r["msgs_per_s"])
        elif r["mode"] == "latency":
            latency_runs[(r["target"], r["rate"])].append(r)
        elif r["mode"] == "idle":
            idle[(r["target"], r["scenario"])] = r
        elif r["mode"] == "handshakes" and r.get("scenario") == "auth":
            auth_runs[r["target"]].append(r)
        elif r["mode"] == "handshakes":
            handshake_runs[r["target"]].append(r["per_s"])
            handshake_cost[r["target"]].append(r)
    # Handshakes, like throughput, are the medians of the interleaved runs. Latency's p50 is too, but
    # its tails are the best (lowest) of the runs: a VM stall only ever adds latency, so the lowest
    # p99 is the one least disturbed by the host.
    latency = {k: {"p50_us": statistics.median(r["p50_us"] for r in runs),
                   "p99_us": min(r["p99_us"] for r in runs),
                   "p999_us": min(r["p999_us"] for r in runs),
                   "runs": len(runs)}
               for k, runs in latency_runs.items()}
    handshakes = {t: statistics.median(v) for t, v in handshake_runs.items() if t in TARGETS}

    verdicts = []
    if any(t in TARGETS for _, _, t in tput):
        print("Throughput, messages/s echoed (median of runs); ratios to direct, and wsgate to each peer")
        print(f"{'scenario':<14}" + "".join(f"{t:>11}" for t in TARGETS)
              + "".join(f"{p + '/dir':>12}" for p in PROXIES) + f"{'ws/nginx':>10}{'ws/hapx':>10}")
        for conns, size in sorted({(c, s) for c, s, _ in tput}, key=lambda k: k[1]):
            med = {t: statistics.median(tput[(conns, size, t)]) for t in TARGETS if tput.get((conns, size, t))}
            if len(med) < len(TARGETS):
                continue
            label = f"{conns} x {human(size)}"
            ratio = lambda a, b: med[a] / med[b] if med[b] else 0.0
            line = f"{label:<14}" + "".join(f"{med[t]:>11.0f}" for t in TARGETS)
            line += "".join(f"{ratio(p, 'direct'):>12.2f}" for p in PROXIES)
            line += f"{ratio('wsgate', 'nginx'):>10.2f}{ratio('wsgate', 'haproxy'):>10.2f}"
            print(line)
            best_peer = max(med["nginx"], med["haproxy"])
            slack = 0.97 if size <= 16 else 1.0
            verdicts.append((f"throughput {label}: wsgate >= nginx and HAProxy"
                             + (" (within 3%: load-tool bound)" if size <= 16 else ""),
                             med["wsgate"] >= slack * best_peer))
        print()

    if any(t == "wsgate-remask" for _, _, t in tput):
        print("remask cost: wsgate with `remask: true` (client frames re-masked) against plain wsgate, msg/s")
        print(f"{'scenario':<14}{'wsgate':>11}{'remask':>11}{'ratio':>8}")
        for conns, size in sorted({(c, s) for c, s, _ in tput}, key=lambda k: k[1]):
            plain, remask = tput.get((conns, size, "wsgate")), tput.get((conns, size, "wsgate-remask"))
            if plain and remask:
                a, b = statistics.median(plain), statistics.median(remask)
                print(f"{f'{conns} x {human(size)}':<14}{a:>11.0f}{b:>11.0f}{(b / a if a else 0.0):>8.2f}")
        print()

    if latency:
        passes = max((r["runs"] for r in latency.values()), default=0)
        print(f"Latency, 32 B ping-pong, microseconds; p50: median of runs, (best): lowest of the {passes} runs"
              " (rate: fixed msg/s with coordinated-omission correction)")
        print(f"{'target':<10}{'rate':>8}{'p50':>10}{'p99(best)':>11}{'p99.9(best)':>13}{'+p99(best)':>12}")
        for rate in sorted({r for _, r in latency}, key=lambda r: r or 0):
            direct = latency.get(("direct", rate))
            for t in TARGETS:
                r = latency.get((t, rate))
                if not r:
                    continue
                added = r["p99_us"] - direct["p99_us"] if direct else float("nan")
                print(f"{t:<10}{str(rate or 'max'):>8}{r['p50_us']:>10.1f}{r['p99_us']:>11.1f}{r['p999_us']:>13.1f}"
                      f"{added:>12.1f}")
            if direct and ("wsgate", rate) in latency and ("nginx", rate) in latency:
                added = {t: latency[(t, rate)]["p99_us"] - direct["p99_us"] for t in ("wsgate", "nginx")}
                verdicts.append((f"latency ({rate or 'back to back'}): wsgate's added p99 (best of {passes} passes)"
                                 " <= nginx's", added["wsgate"] <= added["nginx"]))
        print()

    if any(t not in TLS_PROXIES for t, _ in idle):
        print("Idle tunnels: proxy RSS per proxied WebSocket connection (both legs)")
        print(f"{'proxy':<10}{'scenario':>9}{'open':>7}{'RSS before':>12}{'RSS after':>11}{'KiB/conn':>10}")
        per_conn = {}
        for (t, scenario), r in sorted(idle.items()):
            if t in TLS_PROXIES:
                continue
            kib = (r["rss_after_kib"] - r["rss_before_kib"]) / r["open"] if r["open"] else float("nan")
            per_conn[(t, scenario)] = kib
            print(f"{t:<10}{scenario:>9}{r['open']:>7}{r['rss_before_kib']:>12}{r['rss_after_kib']:>11}{kib:>10.2f}")
        peers = [p for p in ("nginx", "haproxy") if per_conn.get((p, "idle"))]
        if ("wsgate", "idle") in per_conn and peers:
            print("wsgate KiB/conn as a share of: "
                  + ", ".join(f"{p} {per_conn[('wsgate', 'idle')] / per_conn[(p, 'idle')]:.2f}" for p in peers))
        if ("wsgate", "idle") in per_conn and ("haproxy", "idle") in per_conn:
            verdicts.append(("memory: wsgate KiB per idle tunnel <= HAProxy's",
                             per_conn[("wsgate", "idle")] <= per_conn[("haproxy", "idle")]))
        if ("wsgate", "scale") in per_conn:
            kib = per_conn[("wsgate", "scale")]
            by_fd = 2_000_000 // 2
            by_mem = int(64 * 1024 * 1024 / kib) if kib > 0 else by_fd
            print(f"64 GiB host, 2,000,000 fds: fds allow {by_fd:,} tunnels, memory ({kib:.2f} KiB each, user space "
                  f"only) {by_mem:,}: about {min(by_fd, by_mem):,}")
        print()

    if handshakes:
        print("Handshake rate: WebSocket sessions per second (connect, 101, one echo, close), 16 workers,"
              " median of runs")
        shown = [t for t in TARGETS if t in handshakes]
        ratios = [(f"{p}/dir", p, "direct") for p in PROXIES] + [("ws/nginx", "wsgate", "nginx"),
                                                                   ("ws/hapx", "wsgate", "haproxy")]
        ratios = [(label, a, b) for label, a, b in ratios if handshakes.get(a) and handshakes.get(b)]
        print("".join(f"{t:>11}" for t in shown) + "".join(f"{label:>12}" for label, _, _ in ratios))
        print("".join(f"{handshakes[t]:>11.0f}" for t in shown)
              + "".join(f"{handshakes[a] / handshakes[b]:>12.2f}" for _, a, b in ratios))
        print_cost(handshake_cost, shown)
        for peer, name, factor in (("haproxy", "HAProxy", 1.05), ("nginx", "nginx", 1.15)):
            if "wsgate" in handshakes and peer in handshakes:
                verdicts.append((f"handshakes: wsgate >= {factor:.2f}x {name}'s",
                                 handshakes["wsgate"] >= factor * handshakes[peer]))
        print()

    auth_section(auth_runs)
    tls_section(tput, handshake_runs, handshake_cost, idle, negotiated, verdicts)
    h2_sections(h2_rows, negotiated, verdicts)
    admin_empty = report_admin.sections(admin_rows, verdicts, human)

    # A measurement with nothing in it (every connection refused, every handshake failed) is a broken
    # setup, not a slow proxy: say so and fail, smoke run or not.
    empty = [f"{r['target']} {r['mode']}" + (f" {r.get('streams', r['connections'])} x {human(r['size'])}"
                                             if r["mode"] == "throughput" else "")
             for r in rows if not r.get(EMPTY_KEY[r["mode"]])] + admin_empty
    if empty:
        print("Empty measurements (see the log for their errors): " + ", ".join(empty))
        sys.exit(1)

    if os.environ.get("BENCH_SMOKE") == "1":
        # Runs of a second and 200 idle tunnels show that every mode works, not how fast it is.
        print("Targets: not judged (a smoke run is too short; the full run is scripts/bench.sh)")
        return
    if verdicts:  # none when ONLY picked modes without any (auth-handshakes alone)
        print("Targets")
    for name, ok in verdicts:
        print(f"  [{'met' if ok else 'NOT met'}] {name}")


def print_cost(handshake_cost, targets):
    """What a session cost each side: the proxy's CPU per session, and how busy the load tool was
    (near 100%, the rate is the tool's limit, not the proxy's). Medians of runs."""
    cost, busy = {}, {}
    for t in targets:
        runs = handshake_cost.get(t, [])
        if (us := cpu_per_session(runs)) is not None:
            cost[t] = us
        tool = [r["tool_cpu_s"] / r["seconds"] * 100 for r in runs if r.get("tool_cpu_s") is not None and r["seconds"]]
        if tool:
            busy[t] = statistics.median(tool)
    if cost:
        print("proxy CPU, us per session: " + ", ".join(f"{t} {v:.0f}" for t, v in cost.items()))
    if busy:
        print("load tool busy, % of one core: " + ", ".join(f"{t} {v:.0f}" for t, v in busy.items()))


def cpu_per_session(runs):
    """The proxy's CPU microseconds per session, median of runs; None without CPU figures."""
    per = [r["proxy_cpu_s"] / r["sessions"] * 1e6 for r in runs if r.get("proxy_cpu_s") is not None and r["sessions"]]
    return statistics.median(per) if per else None


def auth_section(auth_runs):
    """wsgate's handshake rate with each kind of route auth, against the same route without. Errors
    are shown and flagged: a token the proxy refuses makes every session a quick 401, which would
    otherwise read as a fast proxy."""
    modes = [(t, label) for t, label in AUTH_MODES if auth_runs.get(t)]
    if not modes:
        return
    print("Auth cost: WebSocket sessions per second (connect, 101, one echo, close), median of runs")
    rates = {t: statistics.median(r["per_s"] for r in auth_runs[t]) for t, _ in modes}
    none = rates.get("wsgate")
    cost = {t: cpu_per_session(auth_runs[t]) for t, _ in modes}
    show_cost = any(v is not None for v in cost.values())
    print(f"{'mode':<14}{'sessions/s':>12}{'vs none':>9}" + (f"{'proxy CPU us/session':>22}" if show_cost else "")
          + f"{'errors':>9}")
    for t, label in modes:
        sessions = sum(r["sessions"] for r in auth_runs[t])
        errors = sum(r.get("errors", 0) for r in auth_runs[t])
        ratio = f"{rates[t] / none:>9.2f}" if none else f"{'-':>9}"
        us = f"{cost[t]:>22.0f}" if cost[t] is not None else f"{'-':>22}"
        # More than 1% of sessions failed (or none completed): the rate is not auth's cost.
        flag = "  ERRORS" if errors > 0.01 * sessions else ""
        print(f"{label:<14}{rates[t]:>12.0f}{ratio}" + (us if show_cost else "") + f"{errors:>9}{flag}")
    print()


def tls_section(tput, handshake_runs, handshake_cost, idle, negotiated, verdicts):
    """wss:// through each proxy: throughput, full handshakes/s and idle memory, one row each."""
    rows = []  # (label, {target: value}, format, verdict or None)
    for conns, size in sorted({(c, s) for c, s, t in tput if t in TLS_PROXIES}, key=lambda k: k[1]):
        med = {t: statistics.median(tput[(conns, size, t)]) for t in TLS_PROXIES if tput.get((conns, size, t))}
        label = f"{conns} x {human(size)}"
        rows.append((f"{label} msg/s", med, ".0f", f"tls throughput {label}: wsgate >= the better of nginx and HAProxy"))
    rates = {t: statistics.median(handshake_runs[t]) for t in TLS_PROXIES if handshake_runs.get(t)}
    if rates:
        rows.append(("handshakes/s", rates, ".0f", "tls handshakes: wsgate >= the better of nginx and HAProxy"))
    kib = {t: (r["rss_after_kib"] - r["rss_before_kib"]) / r["open"]
           for (t, scenario), r in idle.items() if t in TLS_PROXIES and scenario == "idle" and r["open"]}
    if kib:
        rows.append(("idle KiB/tunnel", kib, ".2f", None))
    if not rows:
        return

    print("TLS: wss:// (TLS 1.3, a full handshake per connection, no resumption) through each proxy to the plain"
          " echo backend; medians of runs")
    names = [t.removesuffix("-tls") for t in TLS_PROXIES]
    print(f"{'measure':<18}" + "".join(f"{n:>11}" for n in names) + f"{'ws/nginx':>10}{'ws/hapx':>10}")
    for label, values, fmt, verdict in rows:
        cell = lambda t: f"{values[t]:>11{fmt}}" if t in values else f"{'-':>11}"
        ratio = lambda a, b: f"{values[a] / values[b]:>10.2f}" if values.get(a) and values.get(b) else f"{'-':>10}"
        print(f"{label:<18}" + "".join(cell(t) for t in TLS_PROXIES)
              + ratio("wsgate-tls", "nginx-tls") + ratio("wsgate-tls", "haproxy-tls"))
        peers = [values[t] for t in ("nginx-tls", "haproxy-tls") if t in values]
        if verdict and "wsgate-tls" in values and peers:
            verdicts.append((verdict, values["wsgate-tls"] >= max(peers)))
    print_cost(handshake_cost, TLS_PROXIES)
    for t in TLS_PROXIES:
        r = idle.get((t, "idle"))
        if r:
            print(f"idle {t}: {r['open']} open, RSS {r['rss_before_kib']} -> {r['rss_after_kib']} KiB")
    if "wsgate-tls" in kib and "haproxy-tls" in kib:
        verdicts.append(("tls memory: wsgate KiB per idle wss tunnel <= HAProxy's",
                         kib["wsgate-tls"] <= kib["haproxy-tls"]))
    print("negotiated: " + "; ".join(f"{t} {', '.join(sorted(negotiated[t]))}" for t in TLS_PROXIES
                                     if negotiated.get(t)))
    print()


def h2_sections(rows, negotiated, verdicts):
    """WebSockets over HTTP/2 (throughput per stream shape, memory per idle stream) for wsgate and
    HAProxy, and plain HTTP/2 requests/s for wsgate, nginx and HAProxy; each with wsgate's HTTP/1.1
    number for the same load (wsgate-h1) beside it."""
    tput, base_tput, reqs, req_rows, idle = defaultdict(list), defaultdict(list), defaultdict(list), defaultdict(list), {}
    for r in rows:
        if r["mode"] == "throughput" and r.get("protocol") == "h2":
            tput[(r["streams"], r["connections"], r["size"], r["target"])].append(r["msgs_per_s"])
        elif r["mode"] == "throughput":
            base_tput[(r["connections"], r["size"])].append(r["msgs_per_s"])
        elif r["mode"] == "requests":
            reqs[r["target"]].append(r["per_s"])
            req_rows[r["target"]].append(r)
        elif r["mode"] == "idle":
            idle[r["target"]] = r
    ws_targets = ["wsgate-h2", "haproxy-h2"]
    rows_out = []  # (label, {target: value}, baseline or None, format, verdict or None, higher is better)
    for streams, conns, size in sorted({k[:3] for k in tput}, key=lambda k: (k[2], k[0])):
        med = {t: statistics.median(tput[(streams, conns, size, t)]) for t in ws_targets
               if tput.get((streams, conns, size, t))}
        base = base_tput.get((streams, size))
        label = f"{streams} st x {human(size)}" + (f" /{conns}c" if conns != 1 else "")
        rows_out.append((f"{label} msg/s", med, statistics.median(base) if base else None, ".0f",
                         f"h2 throughput {label}: wsgate >= HAProxy", True))
    kib = {t: (r["rss_after_kib"] - r["rss_before_kib"]) / r["open"] for t, r in idle.items() if r["open"]}
    if any(t in kib for t in ws_targets):
        rows_out.append(("idle KiB/stream", {t: kib[t] for t in ws_targets if t in kib}, kib.get(H2_BASELINE),
                         ".2f", "h2 memory: wsgate KiB per idle WebSocket stream <= HAProxy's", False))
    if rows_out:
        print("WebSockets over HTTP/2 (RFC 8441 extended CONNECT streams, TLS 1.3 + ALPN h2) through each proxy"
              " to the HTTP/1.1 echo backend; medians of runs; h1: wsgate-h1, the same WebSockets over HTTP/1.1,"
              " one TLS connection each")
        print(f"{'measure':<24}{'wsgate':>11}{'haproxy':>11}{'ws/hapx':>10}{'wsgate h1':>11}{'h2/h1':>8}")
        for label, values, base, fmt, verdict, higher in rows_out:
            cell = lambda v, w=11: f"{v:>{w}{fmt}}" if v is not None else f"{'-':>{w}}"
            ws, hx = values.get("wsgate-h2"), values.get("haproxy-h2")
            ratio = lambda a, b, w: f"{a / b:>{w}.2f}" if a and b else f"{'-':>{w}}"
            print(f"{label:<24}{cell(ws)}{cell(hx)}{ratio(ws, hx, 10)}{cell(base)}{ratio(ws, base, 8)}")
            if ws is not None and hx is not None:
                verdicts.append((verdict, ws >= hx if higher else ws <= hx))
        for t in ws_targets + [H2_BASELINE]:
            r = idle.get(t)
            if r:
                over = (f" streams over {r['connections_open']} connections (the server allows "
                        f"{r.get('server_max_streams')} per connection)" if r.get("protocol") == "h2" else " connections")
                print(f"idle {t}: {r['open']} open{over}, RSS {r['rss_before_kib']} -> {r['rss_after_kib']} KiB")
        errors = {t: sum(1 for r in rows if r["target"] == t and r.get("errors")) for t in ws_targets}
        if any(errors.values()):
            print("runs with stream errors (see the log): " + ", ".join(f"{t} {n}" for t, n in errors.items() if n))
        print()

    if reqs:
        targets = [t for t in H2_PROXIES if t in reqs]
        med = {t: statistics.median(v) for t, v in reqs.items()}
        base = med.get(H2_BASELINE)
        print("HTTP/2 requests: GET /static through each proxy to an HTTP/1.1 backend (h2load, 8 connections x 16"
              " streams, TLS 1.3 + ALPN h2); req/s, medians of runs; h1: wsgate-h1, 128 HTTP/1.1 connections x 1")
        ratios = [(lbl, a, b) for lbl, a, b in (("ws/nginx", "wsgate-h2", "nginx-h2"), ("ws/hapx", "wsgate-h2", "haproxy-h2"),
                                                 ("h2/h1", "wsgate-h2", H2_BASELINE)) if med.get(a) and med.get(b)]
        names = [t.removesuffix("-h2") for t in targets]
        print(f"{'measure':<10}" + "".join(f"{n:>11}" for n in names) + (f"{'wsgate h1':>11}" if base else "")
              + "".join(f"{lbl:>10}" for lbl, _, _ in ratios))
        print(f"{'req/s':<10}" + "".join(f"{med[t]:>11.0f}" for t in targets) + (f"{base:>11.0f}" if base else "")
              + "".join(f"{med[a] / med[b]:>10.2f}" for _, a, b in ratios))
        cost = {}
        for t, runs in req_rows.items():
            per = [r["proxy_cpu_s"] / r["succeeded"] * 1e6 for r in runs if r.get("proxy_cpu_s") is not None and r["succeeded"]]
            if per:
                cost[t] = statistics.median(per)
        if cost:
            print("proxy CPU, us per request: " + ", ".join(f"{t} {v:.1f}" for t, v in cost.items()))
        bad = {t: sum(r["requests"] - r["status_2xx"] for r in runs) for t, runs in req_rows.items()}
        if any(bad.values()):
            print("requests without a 2xx: " + ", ".join(f"{t} {n}" for t, n in bad.items() if n) + "  ERRORS")
        protocols = {t: sorted({f"{r['protocol']} {r['tls']}/{r['cipher']}" for r in runs}) for t, runs in req_rows.items()}
        print("negotiated (h2load): " + "; ".join(f"{t} {', '.join(p)}" for t, p in protocols.items()))
        peers = [med[t] for t in ("nginx-h2", "haproxy-h2") if t in med]
        if "wsgate-h2" in med and peers:
            verdicts.append(("h2 requests: wsgate >= the better of nginx and HAProxy", med["wsgate-h2"] >= max(peers)))
        print()
    shown = [t for t in H2_PROXIES + [H2_BASELINE] if negotiated.get(t)]
    if shown:
        print("negotiated (wsgate-bench): " + "; ".join(f"{t} {', '.join(sorted(negotiated[t]))}" for t in shown))
        print()


def human(size):
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


if __name__ == "__main__":
    main(sys.argv[1])
