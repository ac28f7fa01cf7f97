#!/usr/bin/env bash
# The benchmark: wsgate against a direct connection, nginx and HAProxy, in one run on this machine,
# over ws:// and (wsgate-tls, nginx-tls, haproxy-tls: TLS 1.3, a fresh self-signed P-256 certificate,
# no session resumption) over wss://.
#
#   scripts/bench.sh            # the full run (about 11 minutes); the table goes to stdout
#   scripts/bench.sh --smoke    # every mode once, briefly (what .ci/run does): checks the script works
#   ONLY=idle,handshakes scripts/bench.sh   # some of idle, throughput, latency, handshakes,
#                                           # tls-idle, tls-throughput, tls-handshakes (profiling)
#
# The echo backend and the load tool (bench/, `wsgate-bench`) share one core; the proxy under test has
# the other to itself (taskset). All traffic stays on 127.0.0.1. Results: target/bench/results.jsonl
# (one JSON line per measurement, tagged with target and run) and target/bench/table.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1
RUNS=${RUNS:-3}
DURATION=${DURATION:-4}
IDLE=${IDLE:-9000}
SCALE=${SCALE:-9900}
ONLY=,${ONLY:-idle,tls-idle,throughput,tls-throughput,latency,handshakes,tls-handshakes},
wanted() { [[ $ONLY == *",$1,"* ]]; }
if ((SMOKE)); then RUNS=1; DURATION=1; IDLE=200; SCALE=300; fi

OUT=$ROOT/target/bench
WORK=$(mktemp -d)
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }

# Every process started from here inherits the hard limit as its soft limit (20,000 here).
ulimit -n "$(ulimit -Hn)"

if ! command -v nginx >/dev/null || ! command -v haproxy >/dev/null || ! command -v taskset >/dev/null \
  || ! command -v openssl >/dev/null; then
  log "installing nginx, haproxy, util-linux (taskset) and openssl with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nginx haproxy util-linux python3 openssl >/dev/null
fi
# Debian starts the packaged services on install; their ports are not ours, but their CPU time is.
pkill -x nginx 2>/dev/null || true
pkill -x haproxy 2>/dev/null || true

log "building wsgate and wsgate-bench (release)"
cargo build --release --locked -q -p wsgate -p wsgate-bench
WSGATE=$ROOT/target/release/wsgate
BENCH=$ROOT/target/release/wsgate-bench

if (($(nproc) >= 2)); then
  PROXY_CPU=(taskset -c 0)
  LOAD_CPU=(taskset -c 1)
else
  log "one CPU only: running without pinning"
  PROXY_CPU=()
  LOAD_CPU=()
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  log "nothing listens on port $1"
  return 1
}
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# User plus system CPU seconds of a process (all threads; USER_HZ 100). Our proxies' names hold no spaces.
cpu_s() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }

# One certificate per run for every TLS target: ECDSA P-256, for `localhost` (the wss:// URLs' host,
# so the load tool sends it as SNI and verifies it) and 127.0.0.1. CA:FALSE, since the load tool's
# verifier (webpki) refuses a CA certificate as a server's own. HAProxy wants both in one file.
CERT=$WORK/cert.pem
KEY=$WORK/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE -keyout "$KEY" -out "$CERT" 2>/dev/null
cat "$CERT" "$KEY" >"$WORK/combined.pem"

ECHO_PORT=$(free_port)
"${LOAD_CPU[@]}" "$BENCH" echo --listen "127.0.0.1:$ECHO_PORT" >/dev/null &
PIDS+=($!)
wait_port "$ECHO_PORT"

declare -A URL PID
URL[direct]=ws://127.0.0.1:$ECHO_PORT/

# start_wsgate NAME REMASK [tls]: a wsgate as target NAME; REMASK (true/false) is the route's `remask`;
# with `tls`, its listener terminates TLS with the run's certificate.
start_wsgate() {
  local name=${1:-wsgate} remask=${2:-false} tls=${3:-} port admin scheme=ws host=127.0.0.1 tls_yaml=""
  port=$(free_port)
  admin=$(free_port)
  if [[ $tls == tls ]]; then
    scheme=wss host=localhost
    tls_yaml="    tls: { cert: \"$CERT\", key: \"$KEY\" }"
  fi
  cat >"$WORK/$name.yaml" <<YAML
listeners:
  - name: bench
    bind: "127.0.0.1:$port"
$tls_yaml
admin:
  bind: "127.0.0.1:$admin"
upstreams:
  echo:
    endpoints: ["127.0.0.1:$ECHO_PORT"]
routes:
  - name: echo
    match: { path_prefix: "/" }
    upstream: echo
    websocket:
      max_frame_size: 1MiB
      max_message_size: 16MiB
      remask: $remask
YAML
  RUST_LOG=warn "${PROXY_CPU[@]}" "$WSGATE" --config "$WORK/$name.yaml" >"$WORK/$name.log" 2>&1 &
  PID[$name]=$!
  PIDS+=($!)
  wait_port "$port"
  URL[$name]=$scheme://$host:$port/
}

# start_nginx NAME [tls]: an nginx process of its own (so that its worker's RSS is its alone); with
# `tls`, TLS 1.3 only, with neither session tickets nor a session cache, so nothing resumes.
start_nginx() {
  local name=$1 tls=${2:-} port dir=$WORK/$1 scheme=ws host=127.0.0.1 ssl="" ssl_conf=""
  port=$(free_port)
  if [[ $tls == tls ]]; then
    scheme=wss host=localhost ssl=" ssl"
    ssl_conf="ssl_certificate $CERT; ssl_certificate_key $KEY; ssl_protocols TLSv1.3;
    ssl_session_tickets off; ssl_session_cache off;"
  fi
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  server {
    listen 127.0.0.1:$port$ssl backlog=4096;
    $ssl_conf
    location / {
      proxy_pass http://127.0.0.1:$ECHO_PORT;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
  }
}
CONF
  "${PROXY_CPU[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" &
  PIDS+=($!)
  wait_port "$port"
  sleep 0.5
  # The worker holds the connections; the master only watches it.
  PID[$name]=$(pgrep -P "${PIDS[-1]}" | head -1)
  URL[$name]=$scheme://$host:$port/
}

# start_haproxy NAME [tls]: as start_nginx; with `tls`, TLS 1.3 only, no tickets and no session cache.
start_haproxy() {
  local name=$1 tls=${2:-} port scheme=ws host=127.0.0.1 ssl="" cache=""
  port=$(free_port)
  if [[ $tls == tls ]]; then
    scheme=wss host=localhost
    ssl=" ssl crt $WORK/combined.pem ssl-min-ver TLSv1.3 no-tls-tickets"
    cache="  tune.ssl.cachesize 0"
  fi
  cat >"$WORK/$name.cfg" <<CONF
global
  nbthread 1
  maxconn 9990
  ulimit-n 20000
$cache
defaults
  mode http
  timeout connect 5s
  timeout client 1h
  timeout server 1h
  timeout tunnel 1h
frontend bench
  bind 127.0.0.1:$port$ssl
  maxconn 9990
  default_backend echo
backend echo
  server echo 127.0.0.1:$ECHO_PORT maxconn 9990
CONF
  "${PROXY_CPU[@]}" haproxy -db -f "$WORK/$name.cfg" >"$WORK/$name.log" 2>&1 &
  PID[$name]=$!
  PIDS+=($!)
  wait_port "$port"
  URL[$name]=$scheme://$host:$port/
}

PROXIES=(wsgate nginx haproxy)
TLS_PROXIES=(wsgate-tls nginx-tls haproxy-tls)
TARGETS=(direct "${PROXIES[@]}")
# `remask: true` costs a pass over client payloads; measured for throughput, where it shows.
THROUGHPUT_TARGETS=("${TARGETS[@]}" wsgate-remask)

# Appends the tool's JSON line, tagged, to the results; for a proxy, with the CPU seconds it spent
# during the tool's whole run (`proxy_cpu_s`; the tool's own, over its measuring window: `tool_cpu_s`).
record() {
  local target=$1 run=$2 line pid=${PID[$1]:-} cpu0="" cpu=""
  shift 2
  [[ -n $pid ]] && cpu0=$(cpu_s "$pid")
  line=$("${LOAD_CPU[@]}" "$BENCH" "$@" --ca "$CERT") || { log "$target: wsgate-bench $* failed"; return 1; }
  [[ -n $pid ]] && cpu=$(awk -v a="$cpu0" -v b="$(cpu_s "$pid")" 'BEGIN { printf ",\"proxy_cpu_s\":%.2f", b - a }')
  printf '{"target":"%s","run":%s%s,%s\n' "$target" "$run" "$cpu" "${line#\{}" >>"$RESULTS"
  log "$target run $run: $line"
}

# Idle connections, on freshly started proxies so that earlier load has not grown their heaps.
idle() {
  local target=$1 count=$2 tag=$3 before after
  before=$(rss_kib "${PID[$target]}")
  "${LOAD_CPU[@]}" "$BENCH" idle --url "${URL[$target]}" --connections "$count" --hold 600 --ca "$CERT" >"$WORK/idle.out" 2>"$WORK/idle.err" &
  local tool=$!
  for _ in $(seq 600); do
    grep -q '"mode":"idle"' "$WORK/idle.out" && break
    sleep 0.1
  done
  sleep 1
  after=$(rss_kib "${PID[$target]}")
  kill "$tool" 2>/dev/null || true
  wait "$tool" 2>/dev/null || true
  local line
  line=$(grep '"mode":"idle"' "$WORK/idle.out" || echo '{"mode":"idle","open":0}')
  printf '{"target":"%s","run":0,"scenario":"%s","rss_before_kib":%s,"rss_after_kib":%s,%s\n' \
    "$target" "$tag" "$before" "$after" "${line#\{}" >>"$RESULTS"
  log "$target $tag: RSS ${before} -> ${after} KiB, $line"
  sleep 2 # let the proxy close the dropped tunnels
}

start_wsgate wsgate false
start_wsgate wsgate-remask true
start_nginx nginx
start_haproxy haproxy
start_wsgate wsgate-tls false tls
start_nginx nginx-tls tls
start_haproxy haproxy-tls tls
log "targets: ${URL[*]}"

if wanted idle; then
  log "idle: $IDLE connections per proxy, then wsgate alone at $SCALE"
  for p in "${PROXIES[@]}"; do idle "$p" "$IDLE" idle; done
  # The scale round on a fresh wsgate too, so that its RSS per tunnel counts from a clean heap.
  kill "${PID[wsgate]}"
  wait "${PID[wsgate]}" 2>/dev/null || true
  start_wsgate wsgate false
  idle wsgate "$SCALE" scale
fi

if wanted tls-idle; then
  log "tls idle: $IDLE wss connections per proxy"
  for p in "${TLS_PROXIES[@]}"; do idle "$p" "$IDLE" idle; done
fi

wanted throughput && log "throughput: $RUNS interleaved runs of ${DURATION}s per scenario"
wanted throughput && for run in $(seq "$RUNS"); do
  for t in "${THROUGHPUT_TARGETS[@]}"; do
    record "$t" "$run" throughput --url "${URL[$t]}" --connections 64 --size 16 --inflight 16 --duration "$DURATION"
    record "$t" "$run" throughput --url "${URL[$t]}" --connections 16 --size 1024 --inflight 16 --duration "$DURATION"
    record "$t" "$run" throughput --url "${URL[$t]}" --connections 4 --size 65536 --inflight 4 --duration "$DURATION"
  done
done

wanted tls-throughput && log "tls throughput: $RUNS interleaved runs of ${DURATION}s per scenario"
wanted tls-throughput && for run in $(seq "$RUNS"); do
  for t in "${TLS_PROXIES[@]}"; do
    record "$t" "$run" throughput --url "${URL[$t]}" --connections 16 --size 1024 --inflight 16 --duration "$DURATION"
    record "$t" "$run" throughput --url "${URL[$t]}" --connections 4 --size 65536 --inflight 4 --duration "$DURATION"
  done
done

wanted latency && log "latency: 1 connection, 32 B ping-pong, then 2,000 msg/s fixed rate; $RUNS interleaved runs"
wanted latency && for run in $(seq "$RUNS"); do
  for t in "${TARGETS[@]}"; do
    record "$t" "$run" latency --url "${URL[$t]}" --size 32 --duration "$DURATION"
    record "$t" "$run" latency --url "${URL[$t]}" --size 32 --duration "$DURATION" --rate 2000
  done
done

wanted handshakes && log "handshake rate: 16 workers; $RUNS interleaved runs"
wanted handshakes && for run in $(seq "$RUNS"); do
  for t in "${TARGETS[@]}"; do
    record "$t" "$run" handshakes --url "${URL[$t]}" --concurrency 16 --duration "$DURATION"
    sleep 1
  done
done

wanted tls-handshakes && log "tls handshake rate: 16 workers, a full TLS 1.3 handshake per session; $RUNS interleaved runs"
wanted tls-handshakes && for run in $(seq "$RUNS"); do
  for t in "${TLS_PROXIES[@]}"; do
    record "$t" "$run" handshakes --url "${URL[$t]}" --concurrency 16 --duration "$DURATION"
    sleep 1
  done
done

BENCH_SMOKE=$SMOKE python3 scripts/bench/report.py "$RESULTS" | tee "$OUT/table.txt"
