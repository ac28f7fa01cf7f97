#!/usr/bin/env bash
# Socket.IO through wsgate's sticky_cookie: two real Socket.IO servers (npm's socket.io) behind wsgate,
# real clients (npm's socket.io-client) that start on HTTP long-polling and upgrade to WebSocket. Every
# request of a session must reach the backend that created it; checks that each client stays on one
# backend, that every session's requests are in one backend's log, and that no backend logs "Session
# ID unknown". Then the control: without sticky_cookie, round robin splits sessions and the backends
# do log it. Installs socket.io and socket.io-client from the npm registry into a scratch directory.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-8}
command -v node >/dev/null && command -v npm >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
}
source scripts/e2e/common.sh
npm install --silent --no-audit --no-fund --prefix "$work/npm" socket.io@4 socket.io-client@4
export NODE_PATH="$work/npm/node_modules"
echo "socket.io $(node -p 'require("socket.io/package.json").version'), socket.io-client" \
  "$(node -p 'require("socket.io-client/package.json").version'), node $(node --version)"

A=$(free_port); B=$(free_port); STICKY=$(free_port); PLAIN=$(free_port)
node scripts/e2e/socketio-server.js "$A" A > "$work/a.log" 2>&1 & pids+=($!)
node scripts/e2e/socketio-server.js "$B" B > "$work/b.log" 2>&1 & pids+=($!)

gate() {  # gate PORT UPSTREAM_EXTRA -> starts wsgate on PORT in front of both servers
  cat > "$work/wsgate-$1.yaml" <<YAML
listeners: [{ name: public, bind: "127.0.0.1:$1" }]
upstreams:
  io:
    endpoints: ["127.0.0.1:$A", "127.0.0.1:$B"]
$2
routes: [{ name: io, upstream: io }]
YAML
  ./target/debug/wsgate --config "$work/wsgate-$1.yaml" > "$work/wsgate-$1.log" 2>&1 & pids+=($!)
}
gate "$STICKY" "    sticky_cookie: { name: io_srv }"
gate "$PLAIN" ""
for _ in $(seq 100); do
  all=1
  for port in "$A" "$B" "$STICKY" "$PLAIN"; do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null || all=0
  done
  [ "$all" = 1 ] && break
  sleep 0.1
done

fail() { echo "FAIL: $*"; for f in a b; do echo "--- $f.log (tail)"; tail -5 "$work/$f.log"; done; exit 1; }
unknown() { cat "$work/a.log" "$work/b.log" | grep -ci "session id unknown" || true; }

echo "--- $CLIENTS clients through sticky_cookie"
node scripts/e2e/socketio-client.js "http://127.0.0.1:$STICKY" "$CLIENTS" | tee "$work/sticky.out" \
  || fail "a client failed"
[ "$(unknown)" = 0 ] || fail "backends logged Session ID unknown"
# Both backends took sessions (the first request of each is balanced), and each session's requests
# and upgrade are all in the log of the backend that created it.
python3 - "$work/a.log" "$work/b.log" <<'PY'
import re, sys
logs = {}
for path in sys.argv[1:]:
    logs[path] = open(path).read()
created = {p: set(re.findall(r" connection sid=(\S+) transport=polling", t)) for p, t in logs.items()}
upgraded = {p: set(re.findall(r" upgraded sid=(\S+) transport=websocket", t)) for p, t in logs.items()}
seen = {p: set(re.findall(r" (?:request \w+|upgrade) sid=(\S+)", t)) - {"-"} for p, t in logs.items()}
counts = [len(c) for c in created.values()]
assert all(counts), f"sessions per backend {counts}: one backend took none"
for p in logs:
    others = set().union(*(seen[q] for q in logs if q != p))
    assert not (created[p] & others), f"sessions of {p} reached the other backend: {created[p] & others}"
    assert created[p] == upgraded[p], f"{p}: not every session upgraded: {created[p] ^ upgraded[p]}"
    for sid in created[p]:
        assert re.search(rf" request (?:GET|POST) sid={re.escape(sid)} ", logs[p]), f"{sid}: no polling request"
polls = sum(len(re.findall(r" request (?:GET|POST) sid=(?!-)", t)) for t in logs.values())
print(f"sessions per backend {counts}, all upgraded to websocket on their own backend;"
      f" {polls} polling requests with a session id, none on the wrong backend")
PY
cookies=$(cat "$work/a.log" "$work/b.log" | grep -c "cookie=io_srv=" || true)
[ "$cookies" -gt 0 ] || fail "no request carried the affinity cookie to a backend"
echo "requests that carried io_srv to the backend: $cookies; Session ID unknown: 0"

echo "--- control: the same clients without sticky_cookie (round robin)"
if node scripts/e2e/socketio-client.js "http://127.0.0.1:$PLAIN" "$CLIENTS" > "$work/plain.out"; then
  fail "without sticky_cookie every client still worked: the check above proves nothing"
fi
tail -1 "$work/plain.out"
[ "$(unknown)" -gt 0 ] || fail "without sticky_cookie no backend logged Session ID unknown"
echo "without sticky_cookie: $(unknown) 'Session ID unknown' errors in the backends' logs"
echo "socket.io end to end: all checks passed"
