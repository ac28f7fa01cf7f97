#!/usr/bin/env bash
# End to end against a real Prometheus: wsgate (demo mode: its built-in echo backend) is scraped every
# second. First only good traffic is driven, and every query of grafana/wsgate.json must already return
# a series (a healthy system's panels show 0, never "No data"); then the failure cases, a reload, and
# Prometheus's HTTP API must show the target up, a series for every query again, and counters equal to
# what was sent. promtool must accept /metrics. Installs what it needs (Debian's prometheus, PyPI's websockets). Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
source scripts/e2e/common.sh
LISTEN=$(free_port); TINY=$(free_port); ADMIN=$(free_port); ECHO=$(free_port); DEAD=$(free_port)
PROM=$(free_port)

cat > "$work/wsgate.yaml" <<YAML
listeners:
  - { name: public, bind: "127.0.0.1:$LISTEN", http2: true }
  - { name: tiny, bind: "127.0.0.1:$TINY", max_connections: 1 }
admin: { bind: "127.0.0.1:$ADMIN" }
upstreams:
  echo: { endpoints: ["127.0.0.1:$ECHO"] }
  unreachable: { endpoints: ["127.0.0.1:$DEAD"], connect_timeout: 300ms }
routes:
  - { name: echo, match: { path_prefix: "/" }, upstream: echo, websocket: { subprotocols: ["chat.v1"] } }
  - { name: dead, match: { path_prefix: "/dead" }, upstream: unreachable }
YAML
./target/debug/wsgate demo --config "$work/wsgate.yaml" > "$work/wsgate.out" 2> "$work/wsgate.log" &
pids+=($!)
WSGATE_PID=$!

cat > "$work/prometheus.yml" <<YAML
global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: wsgate
    static_configs: [{ targets: ["127.0.0.1:$ADMIN"] }]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$PROM" > "$work/prometheus.log" 2>&1 &
pids+=($!)

for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$ADMIN/healthz" >/dev/null && curl -sf "http://127.0.0.1:$PROM/-/ready" >/dev/null && break
  sleep 0.1
done

echo "--- promtool check metrics"
curl -sf "http://127.0.0.1:$ADMIN/metrics" > "$work/metrics.txt"
lint=$(promtool check metrics < "$work/metrics.txt" 2>&1 || true)
if [ -n "$lint" ]; then echo "$lint"; echo "FAIL: promtool check metrics"; exit 1; fi
echo "clean"

# Prometheus publishes discovered targets every 5 s: wait for the first successful scrape.
for _ in $(seq 200); do
  curl -s "http://127.0.0.1:$PROM/api/v1/query?query=up" | grep -q '"value":\[[0-9.]*,"1"\]' && break
  sleep 0.1
done

show_logs() { echo "--- prometheus log"; tail -20 "$work/prometheus.log"; echo "--- targets"; curl -s "http://127.0.0.1:$PROM/api/v1/targets" | head -c 2000; echo; }
trap 'show_logs; cleanup' ERR

# Queries Prometheus's API; `series [SECONDS]` waits up to SECONDS for every dashboard query to return a
# series and names those that never do; `values` checks the counters of the whole run.
cat > "$work/check.py" <<'PY'
import json, os, sys, time, urllib.parse, urllib.request

base = f"http://127.0.0.1:{os.environ['PROM']}/api/v1/query?query="
def query(expr):
    with urllib.request.urlopen(base + urllib.parse.quote(expr)) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]

def dashboard_exprs():
    subst = {"$instance": ".*", "$route": ".*", "$__rate_interval": "30s", "$__range": "5m"}
    dashboard = json.load(open("grafana/wsgate.json"))
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for k, v in subst.items():
                expr = expr.replace(k, v)
            out.append((panel["title"], expr))
    return out

def series(wait):
    exprs = dashboard_exprs()
    deadline = time.monotonic() + wait
    while True:
        empty = [(title, expr) for title, expr in exprs if not query(expr)]
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(f"{len(exprs)} dashboard queries checked, {len(exprs) - len(empty)} return a series")
    return [f"no series: {title}: {expr}" for title, expr in empty]

def values():
    failures = []
    up = query('up{job="wsgate"}')
    if not up or up[0]["value"][1] != "1":
        failures.append(f"target not up: {up}")
    expected = {
        'sum(wsgate_ws_frames_total{direction="client_to_upstream",opcode="text"})': 5,
        'sum(wsgate_ws_frames_total{direction="client_to_upstream",opcode="binary"})': 3,
        'sum(wsgate_ws_frames_total{direction="client_to_upstream",opcode="ping"})': 2,
        'sum(wsgate_ws_frames_total{direction="client_to_upstream",opcode="close"})': 1,
        'sum(wsgate_ws_frames_total{direction="upstream_to_client",opcode="text"})': 5,
        'sum(wsgate_ws_frames_total{direction="upstream_to_client",opcode="binary"})': 3,
        'sum(wsgate_ws_frame_payload_bytes_total{direction="client_to_upstream",opcode="binary"})': 300,
        'sum(wsgate_ws_pings_answered_total)': 2,
        'sum(wsgate_ws_protocol_violations_total{kind="unmasked_frame"})': 1,
        'sum(wsgate_ws_protocol_violations_total)': 1,
        'sum(wsgate_ws_handshakes_total{result="ok"})': 2,
        'sum(wsgate_ws_handshakes_total{result="version"})': 1,
        'sum(wsgate_ws_handshakes_total)': 3,
        'sum(wsgate_http_requests_total{route="echo",status="200"})': 3,
        'sum(wsgate_http_requests_total{route="dead",status="502"})': 1,
        'sum(wsgate_upstream_connect_errors_total{upstream="unreachable"})': 1,
        'sum(wsgate_upstream_connect_errors_total{upstream="echo"})': 0,
        'sum(wsgate_config_reloads_total{result="success"})': 1,
        'sum(wsgate_config_reloads_total{result="failure"})': 0,
        'sum(wsgate_listener_connections_rejected_total{listener="tiny"})': 1,
        'sum(wsgate_listener_connections_rejected_total{listener="public"})': 0,
        # The first event of a series exported at 0 from start is a visible increase.
        'sum(increase(wsgate_upstream_connect_errors_total{upstream="unreachable"}[5m])) > 0': 1,
        'sum(increase(wsgate_ws_protocol_violations_total[5m])) > 0': 1,
    }
    for expr, want in expected.items():
        got = query(expr)
        value = float(got[0]["value"][1]) if got else None
        if expr.endswith("> 0") and value is not None:
            value = 1
        status = "ok" if value == want else "FAIL"
        print(f"{status}: {expr} = {value} (want {want})")
        if value != want:
            failures.append(expr)
    return failures

mode = sys.argv[1]
failures = series(float(sys.argv[2])) if mode == "series" else series(0) + values()
if failures:
    print("\n".join(failures))
    sys.exit(1)
print(f"Prometheus end to end ({mode}): all checks passed")
PY

echo "--- good traffic only"
LISTEN=$LISTEN python3 - <<'PY'
import asyncio, os, urllib.request
import websockets

port = int(os.environ["LISTEN"])

async def exchange():
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", subprotocols=["chat.v1"], ping_interval=None) as ws:
        assert ws.subprotocol == "chat.v1", ws.subprotocol
        for i in range(5):
            await ws.send(f"text {i}")
            assert await ws.recv() == f"text {i}"
        for i in range(3):
            await ws.send(bytes([i]) * 100)
            assert await ws.recv() == bytes([i]) * 100
        for _ in range(2):
            await (await ws.ping(b"p"))
        await ws.close(1000)

asyncio.run(exchange())
# Plain HTTP: the demo page three times.
for _ in range(3):
    urllib.request.urlopen(f"http://127.0.0.1:{port}/").read()
print("good traffic driven")
PY

echo "--- Prometheus API: every dashboard query has a series before any failure"
# Series created by the good traffic need a few scrapes to show in rate(); failure-only series
# never would, so a bounded wait proves they were exported from the start.
PROM=$PROM python3 "$work/check.py" series 20

echo "--- failure cases"
LISTEN=$LISTEN TINY=$TINY python3 - <<'PY'
import base64, os, socket, urllib.request, urllib.error

port = int(os.environ["LISTEN"])

def raw(request: bytes, then: bytes = b"") -> bytes:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(request)
    s.settimeout(3)
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    s.sendall(then)
    try:
        rest = s.recv(4096)
    except socket.timeout:
        rest = b""
    s.close()
    return head + rest

key = base64.b64encode(os.urandom(16)).decode()
upgrade = f"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: VERSION\r\n\r\n"
# One protocol violation: an unmasked client frame gets close 1002.
answer = raw(upgrade.replace("VERSION", "13").encode(), b"\x81\x02hi")
assert answer.startswith(b"HTTP/1.1 101") and b"\x88\x02\x03\xea" in answer, answer
# One refused handshake (426).
assert raw(upgrade.replace("VERSION", "8").encode()).startswith(b"HTTP/1.1 426")
# An upstream that refuses (502, a connect error).
try:
    urllib.request.urlopen(f"http://127.0.0.1:{port}/dead")
    raise SystemExit("expected 502")
except urllib.error.HTTPError as e:
    assert e.code == 502, e.code
# The tiny listener holds one connection; a second one is refused with 503.
held = socket.create_connection(("127.0.0.1", int(os.environ["TINY"])))
refused = socket.create_connection(("127.0.0.1", int(os.environ["TINY"])))
refused.settimeout(3)
assert refused.recv(64).startswith(b"HTTP/1.1 503"), "expected 503 at max_connections"
held.close()
print("failure cases driven")
PY
kill -HUP "$WSGATE_PID"   # a config reload, for the reloads panel
sleep 3                   # three more scrapes

echo "--- Prometheus API: counters of the whole run"
PROM=$PROM python3 "$work/check.py" values
