#!/usr/bin/env bash
# Soak: CONNECTIONS clients (default 1000) exchange sequence-numbered messages of random sizes through
# wsgate for SECONDS (default 600) while the two backends are restarted alternately every 30 s.
# Reports messages lost on connections that stayed open (must be 0), wsgate's RSS over time and the
# protocol violations counted. Not part of `cargo test`; CI runs a short smoke (scripts/soak.sh 40 50).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
connections=${2:-1000}
source scripts/e2e/common.sh
ulimit -n 20000 2>/dev/null || true

LISTEN=$(free_port); ADMIN=$(free_port); B1=$(free_port); B2=$(free_port)
mkdir -p "$work/v"
start_backend() { VERDICT_DIR="$work/v" python3 scripts/e2e/backend.py "$1" > /dev/null 2>&1 & echo $!; }
backend_pids=("$(start_backend "$B1")" "$(start_backend "$B2")")
pids+=("${backend_pids[@]}")

cat > "$work/wsgate.yaml" <<YAML
listeners: [{ name: public, bind: "127.0.0.1:$LISTEN", max_connections: 5000 }]
admin: { bind: "127.0.0.1:$ADMIN" }
upstreams:
  app: { endpoints: ["127.0.0.1:$B1", "127.0.0.1:$B2"], balance: least_connections, max_fails: 1, fail_timeout: 2s }
routes: [{ name: soak, upstream: app, websocket: { max_frame_size: 4MiB, max_message_size: 4MiB } }]
YAML
./target/debug/wsgate --config "$work/wsgate.yaml" > "$work/wsgate.log" 2>&1 &
WSGATE=$!
pids+=($WSGATE)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ADMIN/healthz" >/dev/null && break; sleep 0.1; done
sleep 1

rss() { awk '/VmRSS/ {print $2}' "/proc/$WSGATE/status"; }
violations() {
  curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '/^wsgate_ws_protocol_violations_total/ {s += $2} END {print s + 0}'
}

python3 scripts/soak/soak.py "ws://127.0.0.1:$LISTEN/soak" "$connections" "$seconds" > "$work/soak.json" &
SOAK=$!
echo "t_s rss_kib active_tunnels"
start=$SECONDS
turn=0
while kill -0 "$SOAK" 2>/dev/null; do
  sleep 5
  elapsed=$((SECONDS - start))
  active=$(curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '/^wsgate_ws_connections_active/ {print $2}')
  echo "$elapsed $(rss) ${active:-0}"
  # Every 30 s restart one backend (alternating): its tunnels end; clients reconnect.
  if [ $((elapsed / 30)) -gt "$turn" ] && [ "$elapsed" -lt "$seconds" ]; then
    turn=$((elapsed / 30))
    i=$((turn % 2)); port=$([ "$i" = 0 ] && echo "$B1" || echo "$B2")
    kill "${backend_pids[$i]}" 2>/dev/null || true
    sleep 0.5
    backend_pids[$i]=$(start_backend "$port")
    pids+=("${backend_pids[$i]}")
    echo "# t=${elapsed}s restarted backend $((i + 1))"
  fi
done
wait "$SOAK"
summary=$(tail -1 "$work/soak.json")
echo "summary: $summary"
echo "violations counted: $(violations); final RSS $(rss) KiB"
lost=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["lost_on_open_connections"] + json.loads(sys.argv[1])["out_of_order"])' "$summary")
if [ "$lost" != "0" ]; then echo "FAIL: $lost messages lost or out of order on open connections"; exit 1; fi
echo "soak passed: no message lost on connections that stayed open"
