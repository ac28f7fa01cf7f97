#!/usr/bin/env bash
# Instructions per WebSocket session in wsgate (connect, 101, one echo, close), counted by
# `valgrind --tool=callgrind`, whose counts do not move with the machine's noise.
#
#   scripts/bench/instructions.sh            # prints Ir per session for the current build
#   SESSIONS_SECONDS=20 scripts/bench/instructions.sh
#   PROFILE=/tmp/cg scripts/bench/instructions.sh   # keeps the long run's profile for callgrind_annotate
#
# Two runs under callgrind, one short and one long; the difference of their instruction counts
# divided by the difference of their session counts removes start-up and shutdown.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo build --release --locked -q -p wsgate -p wsgate-bench
# WSGATE=path compares another build (a baseline) under the same load.
WSGATE=${WSGATE:-target/release/wsgate}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
ECHO=$(free_port)
target/release/wsgate-bench echo --listen "127.0.0.1:$ECHO" >/dev/null &
wait_port "$ECHO"

# run SECONDS: prints "instructions sessions"
run() {
  local port
  port=$(free_port)
  cat >"$WORK/wsgate.yaml" <<YAML
listeners: [{ name: bench, bind: "127.0.0.1:$port" }]
upstreams: { echo: { endpoints: ["127.0.0.1:$ECHO"] } }
routes: [{ name: echo, match: { path_prefix: "/" }, upstream: echo }]
YAML
  RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$1" \
    "$WSGATE" --threads 1 --config "$WORK/wsgate.yaml" >"$WORK/wsgate.log" 2>&1 &
  local pid=$!
  wait_port "$port"
  local line
  line=$(target/release/wsgate-bench handshakes --url "ws://127.0.0.1:$port/" --concurrency 4 --duration "$1")
  kill -INT "$pid"
  wait "$pid" 2>/dev/null || true
  local ir sessions
  ir=$(grep -E '^(summary|totals):' "$WORK/cg.$1" | head -1 | awk '{print $2}')
  sessions=$(sed -E 's/.*"sessions":([0-9]+).*/\1/' <<<"$line")
  echo "$ir $sessions"
}
short=${SHORT_SECONDS:-3}
long=${SESSIONS_SECONDS:-12}
read -r ir1 s1 < <(run "$short")
read -r ir2 s2 < <(run "$long")
if [ -n "${PROFILE:-}" ]; then cp "$WORK/cg.$long" "$PROFILE"; fi
python3 - "$ir1" "$s1" "$ir2" "$s2" <<'PY'
import sys
ir1, s1, ir2, s2 = map(int, sys.argv[1:])
per = (ir2 - ir1) / max(1, s2 - s1)
print(f'{{"mode":"instructions","sessions_short":{s1},"sessions_long":{s2},"ir_short":{ir1},"ir_long":{ir2},"ir_per_session":{per:.0f}}}')
PY
