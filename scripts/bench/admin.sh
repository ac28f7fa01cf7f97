# Sourced by scripts/bench.sh: the modes that measure wsgate's admin API for live tunnels (issue 16),
# as functions using its variables and helpers (WORK, BENCH, LOAD_CPU, PID, URL, ADMIN, RESULTS,
# record, rss_kib, start_wsgate, stop, log).
# shellcheck shell=bash disable=SC2034 # PID, URL and ADMIN are bench.sh's associative arrays

# A tap's reader (scripts/bench/tap_reader.py) takes at most this many lines a second, as an operator's
# terminal over a slow link would. The trickle's 200 lines/s pass untouched; a flood's cannot, so
# wsgate drops lines for it, which is what a tap must do rather than slow the tunnel.
TAP_READ_RATE=2000

# tunnel_id ADMIN CLIENT: the id of the live tunnel whose client address is CLIENT (IP:PORT), if any.
tunnel_id() {
  curl -sf "http://$1/tunnels?client=${2%:*}" | python3 -c '
import json, sys
print(next((t["id"] for t in json.load(sys.stdin) if t["client"] == sys.argv[1]), ""))' "$2"
}

# start_side TARGET INTERVAL TAPPED: the one extra tunnel through TARGET: the load tool's trickle
# (INTERVAL between 32 B messages; 0s: a flood of 16 B messages, 16 in flight) and, with TAPPED=1, a
# tap on it read at TAP_READ_RATE lines/s; returns once the tap has shown its first line.
start_side() {
  local target=$1 interval=$2 tapped=$3 local_addr id size=32
  [[ $interval == 0s ]] && size=16
  rm -f "$WORK/side.out" "$WORK/tap.count" "$WORK/tap.ready"
  "${LOAD_CPU[@]}" "$BENCH" trickle --url "${URL[$target]}" --interval "$interval" --size "$size" \
    >"$WORK/side.out" 2>"$WORK/side.err" &
  SIDE_PID=$!
  for _ in $(seq 100); do
    grep -q '"event":"open"' "$WORK/side.out" 2>/dev/null && break
    sleep 0.1
  done
  local_addr=$(sed -n 's/.*"event":"open","local":"\([^"]*\)".*/\1/p' "$WORK/side.out")
  [[ -n $local_addr ]] || { log "trickle did not open: $(cat "$WORK/side.err")"; return 1; }
  TAP_PID=""
  ((tapped)) || return 0
  for _ in $(seq 50); do
    id=$(tunnel_id "${ADMIN[$target]}" "$local_addr" 2>/dev/null || true)
    [[ -n $id ]] && break
    sleep 0.1
  done
  [[ -n $id ]] || { log "no tunnel from $local_addr on http://${ADMIN[$target]}/tunnels"; return 1; }
  "${LOAD_CPU[@]}" python3 "$ROOT/scripts/bench/tap_reader.py" "${ADMIN[$target]}" "$id" "$TAP_READ_RATE" \
    "$WORK/tap.ready" >"$WORK/tap.count" 2>"$WORK/tap.err" &
  TAP_PID=$!
  for _ in $(seq 100); do
    [[ -s $WORK/tap.ready ]] && return 0
    sleep 0.1
  done
  log "tap on tunnel $id showed nothing"
  return 1
}

# stop_side TARGET RUN SCENARIO: ends the trickle (SIGTERM: it prints its counts), which ends its
# tunnel and so the tap; appends the side tunnel's line (mode "tap") to the results.
stop_side() {
  local target=$1 run=$2 scenario=$3 trickle tap="null"
  kill -TERM "$SIDE_PID" 2>/dev/null || true
  wait "$SIDE_PID" 2>/dev/null || true
  trickle=$(grep '"mode":"trickle","url"' "$WORK/side.out" || echo '{"mode":"trickle","echoed":0}')
  if [[ -n $TAP_PID ]]; then
    # SIGTERM: the reader reads the rest at full speed; the tap ends with the tunnel, after what wsgate
    # still held for it (<= 1,024 lines).
    kill -TERM "$TAP_PID" 2>/dev/null || true
    for _ in $(seq 100); do
      [[ -s $WORK/tap.count ]] && break
      sleep 0.1
    done
    kill "$TAP_PID" 2>/dev/null || true
    wait "$TAP_PID" 2>/dev/null || true
    tap=$(cat "$WORK/tap.count")
    [[ -n $tap ]] || { log "tap reader: $(cat "$WORK/tap.err")"; tap='{"frames":0,"dropped":0,"end":null}'; }
  fi
  printf '{"target":"%s","run":%s,"scenario":"%s","mode":"tap","side":%s,"tap":%s}\n' \
    "$target" "$run" "$scenario" "$trickle" "$tap" >>"$RESULTS"
  log "$target $scenario side tunnel: $trickle, tap $tap"
}

# tap_mode TARGET: the ws:// throughput of TARGET (a wsgate) alone, then while one more tunnel carries
# a message every 10 ms with a tap attached to it, alternating, RUNS times each, for each of
# TAP_SHAPES; then, for one shape, the same with that tunnel flooding, without and with a tap. Even
# runs take each pair the other way round, so that a drift of the machine's speed favours neither.
tap_mode() {
  local target=$1 run shape c s k order
  for run in $(seq "$RUNS"); do
    order=(0 1)
    ((run % 2)) || order=(1 0)
    for shape in "${TAP_SHAPES[@]}"; do
      read -r c s k <<<"$shape"
      local args=(throughput --url "${URL[$target]}" --connections "$c" --size "$s" --inflight "$k" --duration "$DURATION")
      for tapped in "${order[@]}"; do
        if ((tapped)); then
          start_side "$target" 10ms 1
          SCENARIO=tap-tapped record "$target" "$run" "${args[@]}"
          stop_side "$target" "$run" tap-tapped
        else
          SCENARIO=tap-plain record "$target" "$run" "${args[@]}"
        fi
      done
    done
    local args=(throughput --url "${URL[$target]}" --connections 16 --size 1024 --inflight 16 --duration "$DURATION")
    for tapped in "${order[@]}"; do
      local scenario=tap-flood-untapped
      ((tapped)) && scenario=tap-flood-tapped
      start_side "$target" 0s "$tapped"
      SCENARIO=$scenario record "$target" "$run" "${args[@]}"
      stop_side "$target" "$run" "$scenario"
    done
  done
}

# tunnels_list_mode COUNT CONNECTIONS: COUNT idle WebSockets over HTTP/2 (CONNECTIONS TLS connections,
# so wsgate holds COUNT upstream sockets but few client ones: 10,000 HTTP/1.1 tunnels would need
# 20,000 descriptors, the whole limit) through a fresh wsgate, then GET /tunnels timed: everything,
# one route with limit=10, and a filter nothing matches (the scan alone); 5 calls each.
tunnels_list_mode() {
  local count=$1 connections=$2 target=wsgate-list before tool open line
  start_wsgate "$target" false h2
  before=$(rss_kib "${PID[$target]}")
  "${LOAD_CPU[@]}" "$BENCH" h2-idle --connections "$connections" --streams "$count" --hold 600 \
    --url "${URL[$target]}" --ca "$CERT" >"$WORK/list-idle.out" 2>"$WORK/list-idle.err" &
  tool=$!
  for _ in $(seq 1200); do
    grep -q '"mode":"idle"' "$WORK/list-idle.out" && break
    sleep 0.1
  done
  line=$(grep '"mode":"idle"' "$WORK/list-idle.out" || echo '{"open":0}')
  open=$(sed -n 's/.*"open":\([0-9]*\).*/\1/p' <<<"$line")
  log "$target: $line"
  local query
  for query in "" "route=echo&limit=10" "route=none"; do
    list_calls "$target" "$query" "$count" "${open:-0}" "$before"
  done
  kill "$tool" 2>/dev/null || true
  wait "$tool" 2>/dev/null || true
  stop "$target"
}

# list_calls TARGET QUERY REQUESTED OPEN RSS_BEFORE: 5 timed GET /tunnels?QUERY (curl: the time to
# the first byte, wsgate having built the whole answer, and to the last), as one line of results.
list_calls() {
  local target=$1 query=$2 requested=$3 open=$4 before=$5 i
  local url="http://${ADMIN[$target]}/tunnels${query:+?$query}"
  : >"$WORK/list.times"
  for i in 1 2 3 4 5; do
    "${LOAD_CPU[@]}" curl -s -o "$WORK/list.json" -w '%{http_code} %{time_starttransfer} %{time_total} %{size_download}\n' \
      "$url" >>"$WORK/list.times"
  done
  python3 - "$target" "$query" "$requested" "$open" "$before" "$(rss_kib "${PID[$target]}")" \
    "$WORK/list.times" "$WORK/list.json" >>"$RESULTS" <<'PY'
import json, statistics, sys
target, query, requested, open_, before, after, times, body = sys.argv[1:9]
calls = [line.split() for line in open(times) if line.strip()]
ok = [c for c in calls if c[0] == "200"]
ms = lambda i: [float(c[i]) * 1000 for c in ok]
try:
    listed = len(json.load(open(body)))
except (OSError, ValueError):
    listed = None
print(json.dumps({
    "target": target, "run": 0, "mode": "tunnels-list", "query": query, "tunnels": int(requested),
    "open": int(open_), "calls": len(calls), "ok": len(ok), "listed": listed,
    "bytes": int(ok[-1][3]) if ok else 0,
    "median_ms": round(statistics.median(ms(2)), 2) if ok else None,
    "min_ms": round(min(ms(2)), 2) if ok else None, "max_ms": round(max(ms(2)), 2) if ok else None,
    "ttfb_median_ms": round(statistics.median(ms(1)), 2) if ok else None,
    "rss_before_kib": int(before), "rss_after_kib": int(after)}, separators=(",", ":")))
PY
  log "$target GET /tunnels${query:+?$query}: $(tail -1 "$RESULTS")"
}
