#!/usr/bin/env bash
# The benchmark: wsgate against a direct connection, nginx and HAProxy, in one run on this machine,
# over ws:// and (wsgate-tls, nginx-tls, haproxy-tls: TLS 1.3, a fresh self-signed P-256 certificate,
# no session resumption) over wss://; wsgate's handshake rate with each kind of route auth; and HTTP/2
# (wsgate-h2, haproxy-h2: the same TLS, ALPN h2): WebSockets over HTTP/2 (RFC 8441 extended CONNECT,
# many streams per connection) and plain HTTP/2 requests (h2load, with nginx-h2 too: nginx cannot do
# RFC 8441), each beside wsgate's own HTTP/1.1 number for the same load (wsgate-h1); and the admin API
# (scripts/bench/admin.sh): wsgate's throughput with a tap attached to another tunnel (tap), and the
# time GET /tunnels takes with 10,000 tunnels open (tunnels-list).
#
#   scripts/bench.sh            # the full run (about 13 minutes); the table goes to stdout
#   scripts/bench.sh --smoke    # every mode once, briefly (what .ci/run does): checks the script works
#   ONLY=idle,handshakes scripts/bench.sh   # some of idle, throughput, latency, handshakes,
#                                           # auth-handshakes, tls-idle, tls-throughput,
#                                           # tls-handshakes, h2-idle, h2-throughput, h2-requests,
#                                           # tap, tunnels-list (profiling)
#   H2_TARGETS=haproxy scripts/bench.sh      # the h2-* modes without wsgate-h2 (default:
#                                           # "wsgate haproxy"), for a wsgate build without HTTP/2;
#                                           # otherwise a wsgate-h2 that fails to start or to answer
#                                           # fails the run
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
# h2-idle: H2_IDLE WebSocket streams over H2_IDLE_CONNECTIONS connections (HAProxy allows 100 streams
# per connection: tune.h2.max-concurrent-streams); h2-requests: H2_REQUESTS requests per run.
H2_IDLE=${H2_IDLE:-2000}
H2_IDLE_CONNECTIONS=${H2_IDLE_CONNECTIONS:-20}
H2_REQUESTS=${H2_REQUESTS:-200000}
# tunnels-list: TUNNELS_LIST WebSockets over HTTP/2 (TUNNELS_LIST_CONNECTIONS connections) listed.
TUNNELS_LIST=${TUNNELS_LIST:-10000}
TUNNELS_LIST_CONNECTIONS=${TUNNELS_LIST_CONNECTIONS:-100}
# tap: the throughput scenarios ("connections size inflight") measured with and without a tap elsewhere.
TAP_SHAPES=("64 16 16" "16 1024 16" "4 65536 4")
ONLY=,${ONLY:-idle,tls-idle,h2-idle,throughput,tls-throughput,h2-throughput,latency,handshakes,auth-handshakes,tls-handshakes,h2-requests,tap,tunnels-list},
wanted() { [[ $ONLY == *",$1,"* ]]; }
if ((SMOKE)); then RUNS=1; DURATION=1; IDLE=200; SCALE=300; H2_IDLE=200; H2_IDLE_CONNECTIONS=4; H2_REQUESTS=20000
  TUNNELS_LIST=300; TUNNELS_LIST_CONNECTIONS=4; TAP_SHAPES=("16 1024 16"); fi
H2_WANTED=0
if wanted h2-idle || wanted h2-throughput || wanted h2-requests; then H2_WANTED=1; fi
# Which proxies the h2-* modes measure over HTTP/2, named NAME-h2 in the results.
read -r -a H2_KINDS <<<"${H2_TARGETS:-wsgate haproxy}"
for k in "${H2_KINDS[@]}"; do
  [[ $k == wsgate || $k == haproxy ]] || { echo "H2_TARGETS: $k is neither wsgate nor haproxy" >&2; exit 2; }
done

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
  || ! command -v openssl >/dev/null || ! command -v h2load >/dev/null; then
  log "installing nginx, haproxy, util-linux (taskset), openssl and nghttp2-client (h2load) with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nginx haproxy util-linux python3 openssl nghttp2-client >/dev/null
fi
# Debian starts the packaged services on install; their ports are not ours, but their CPU time is.
pkill -x nginx 2>/dev/null || true
pkill -x haproxy 2>/dev/null || true

log "building wsgate and wsgate-bench (release)"
cargo build --release --locked -q -p wsgate -p wsgate-bench
WSGATE=${CARGO_TARGET_DIR:-$ROOT/target}/release/wsgate
BENCH=${CARGO_TARGET_DIR:-$ROOT/target}/release/wsgate-bench

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

declare -A URL PID ADMIN
URL[direct]=ws://127.0.0.1:$ECHO_PORT/

# start_wsgate NAME REMASK [tls|h2|h1] [AUTH]: a wsgate as target NAME; REMASK (true/false) is the
# route's `remask`; with `tls`, its listener terminates TLS with the run's certificate; `h2` is that
# listener with `http2: true` (ALPN h2, RFC 8441) and, when the static backend runs, a /static route
# to it; `h1` is the same with `http2: false` (the HTTP/1.1 baseline).
# AUTH, a YAML flow mapping, is the route's `auth` (e.g. `{ jwt: { keys: "k.pem" } }`), otherwise
# the same config.
start_wsgate() {
  local name=${1:-wsgate} remask=${2:-false} tls=${3:-} auth=${4:-} port admin scheme=ws host=127.0.0.1 tls_yaml=""
  local auth_yaml="" static_upstream="" static_route=""
  port=$(free_port)
  admin=$(free_port)
  if [[ -n $tls ]]; then
    scheme=wss host=localhost
    tls_yaml="    tls: { cert: \"$CERT\", key: \"$KEY\" }"
  fi
  [[ $tls == h2 ]] && tls_yaml+=$'\n    http2: true'
  [[ $tls == h1 ]] && tls_yaml+=$'\n    http2: false'
  if [[ $tls == h2 || $tls == h1 ]] && [[ -n ${STATIC_PORT:-} ]]; then
    static_upstream="  static: { endpoints: [\"127.0.0.1:$STATIC_PORT\"] }"
    static_route="  - { name: static, match: { path_prefix: \"/static\" }, upstream: static }"
  fi
  [[ -n $auth ]] && auth_yaml="    auth: $auth"
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
$static_upstream
routes:
  - name: echo
    match: { path_prefix: "/" }
    upstream: echo
    websocket:
      max_frame_size: 1MiB
      max_message_size: 16MiB
      remask: $remask
$auth_yaml
$static_route
YAML
  RUST_LOG=warn "${PROXY_CPU[@]}" "$WSGATE" --config "$WORK/$name.yaml" >"$WORK/$name.log" 2>&1 &
  PID[$name]=$!
  PIDS+=($!)
  # A config wsgate refuses is a message in its log, not a port that never opens.
  wait_port "$port" || { log "$name: $(tail -5 "$WORK/$name.log" | tr '\n' ' ')"; return 1; }
  URL[$name]=$scheme://$host:$port/
  ADMIN[$name]=127.0.0.1:$admin
}

# start_nginx, start_haproxy, start_auth_service, start_static: the other processes of the run.
# shellcheck source=scripts/bench/peers.sh
source "$ROOT/scripts/bench/peers.sh"
# tap_mode, tunnels_list_mode: the admin API's modes.
# shellcheck source=scripts/bench/admin.sh
source "$ROOT/scripts/bench/admin.sh"

# make_jwt ALG KEY: a compact JWS (RFC 7515) of {"sub":"bench","exp":now+1 day} signed with KEY by
# openssl: RS256 is its PKCS#1 v1.5 signature as is; ES256's DER ECDSA signature becomes the 64-byte
# r||s of RFC 7518 §3.4 (each integer without its sign byte, left-padded to 32 bytes).
make_jwt() {
  python3 - "$1" "$2" <<'PY'
import base64, json, subprocess, sys, time
alg, key = sys.argv[1:3]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
part = lambda obj: b64(json.dumps(obj, separators=(",", ":")).encode())
signed = part({"alg": alg, "typ": "JWT"}) + "." + part({"sub": "bench", "exp": int(time.time()) + 86400})
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signed.encode(),
                     capture_output=True, check=True).stdout

def der_len(d, i):  # the length at d[i] and where its content starts (X.690 §8.1.3)
    if d[i] < 0x80:
        return d[i], i + 1
    k = d[i] & 0x7F
    return int.from_bytes(d[i + 1:i + 1 + k], "big"), i + 1 + k

if alg == "ES256":  # SEQUENCE { INTEGER r, INTEGER s }
    assert sig[0] == 0x30, "not a DER SEQUENCE"
    _, i = der_len(sig, 1)
    raw = b""
    for _ in range(2):
        assert sig[i] == 0x02, "not a DER INTEGER"
        n, i = der_len(sig, i + 1)
        v = sig[i:i + n].lstrip(b"\0")
        assert len(v) <= 32, "integer wider than P-256"
        raw, i = raw + v.rjust(32, b"\0"), i + n
    sig = raw
print(signed + "." + b64(sig))
PY
}

# upgrade_status URL [HEADER...]: the status code of one upgrade request to URL (ws://) with HEADERs.
upgrade_status() {
  python3 - "$@" <<'PY'
import socket, sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
extra = "".join(h + "\r\n" for h in sys.argv[2:])
with socket.create_connection((url.hostname, url.port), timeout=5) as s:
    s.sendall(f"GET {url.path or '/'} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              f"Sec-WebSocket-Version: 13\r\n{extra}\r\n".encode())
    head = s.recv(4096).split(b" ", 2)
    print(head[1].decode() if len(head) > 1 else "none")
PY
}

# stop NAME: ends target NAME's process (started by this script) and forgets its URL.
stop() {
  kill "${PID[$1]}" 2>/dev/null || true
  wait "${PID[$1]}" 2>/dev/null || true
  unset "PID[$1]" "URL[$1]" "ADMIN[$1]"
}

PROXIES=(wsgate nginx haproxy)
TLS_PROXIES=(wsgate-tls nginx-tls haproxy-tls)
TARGETS=(direct "${PROXIES[@]}")
# `remask: true` costs a pass over client payloads; measured for throughput, where it shows.
THROUGHPUT_TARGETS=("${TARGETS[@]}" wsgate-remask)

# tool MODE ARGS...: the load tool's JSON line for one measurement; mode `requests` is h2load's plain
# HTTP rate (scripts/bench/h2load.py: ARGS are its own), every other mode wsgate-bench's.
tool() {
  if [[ $1 == requests ]]; then
    shift
    "${LOAD_CPU[@]}" python3 scripts/bench/h2load.py "$@"
  else
    "${LOAD_CPU[@]}" "$BENCH" "$@" --ca "$CERT"
  fi
}

# Appends the tool's JSON line, tagged, to the results; for a proxy, with the CPU seconds it spent
# during the tool's whole run (`proxy_cpu_s`; the tool's own, over its measuring window: `tool_cpu_s`).
# SCENARIO=name in the environment tags the line `"scenario":"name"` (the auth runs' plain wsgate is
# a measurement of its own, not one more run of the handshakes section).
record() {
  local target=$1 run=$2 line pid=${PID[$1]:-} cpu0="" cpu="" tag=""
  shift 2
  [[ -n ${SCENARIO:-} ]] && tag=",\"scenario\":\"$SCENARIO\""
  [[ -n $pid ]] && cpu0=$(cpu_s "$pid")
  line=$(tool "$@") || { log "$target: $* failed"; return 1; }
  [[ -n $pid ]] && cpu=$(awk -v a="$cpu0" -v b="$(cpu_s "$pid")" 'BEGIN { printf ",\"proxy_cpu_s\":%.2f", b - a }')
  printf '{"target":"%s","run":%s%s%s,%s\n' "$target" "$run" "$tag" "$cpu" "${line#\{}" >>"$RESULTS"
  log "$target run $run: $line"
}

# idle TARGET COUNT TAG [H2_CONNECTIONS]: COUNT idle WebSockets through TARGET, each its own connection,
# or with H2_CONNECTIONS, COUNT HTTP/2 streams over that many connections (h2-idle). On freshly started
# proxies, so that earlier load has not grown their heaps.
idle() {
  local target=$1 count=$2 tag=$3 h2=${4:-} before after
  local mode=(idle --connections "$count")
  [[ -n $h2 ]] && mode=(h2-idle --connections "$h2" --streams "$count")
  before=$(rss_kib "${PID[$target]}")
  "${LOAD_CPU[@]}" "$BENCH" "${mode[@]}" --url "${URL[$target]}" --hold 600 --ca "$CERT" >"$WORK/idle.out" 2>"$WORK/idle.err" &
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
# HTTP/2: NAME-h2 for each of H2_TARGETS, wsgate-h1 (wsgate-h2's config with `http2: false`: its
# HTTP/1.1 baseline) and, for plain requests only, nginx-h2; all behind the run's certificate.
H2_PROXIES=()
if ((H2_WANTED)); then
  wanted h2-requests && start_static
  for k in "${H2_KINDS[@]}"; do
    case $k in
      wsgate) start_wsgate wsgate-h2 false h2 ;;
      haproxy) start_haproxy haproxy-h2 h2 ;;
    esac
    H2_PROXIES+=("$k-h2")
  done
  start_wsgate wsgate-h1 false h1
  wanted h2-requests && start_nginx nginx-h2 h2
fi
log "targets: ${URL[*]}"

if wanted idle; then
  log "idle: $IDLE connections per proxy, then wsgate alone at $SCALE"
  for p in "${PROXIES[@]}"; do idle "$p" "$IDLE" idle; done
  # The scale round on a fresh wsgate too, so that its RSS per tunnel counts from a clean heap.
  stop wsgate
  start_wsgate wsgate false
  idle wsgate "$SCALE" scale
fi

if wanted tls-idle; then
  log "tls idle: $IDLE wss connections per proxy"
  for p in "${TLS_PROXIES[@]}"; do idle "$p" "$IDLE" idle; done
fi

if wanted h2-idle; then
  log "h2 idle: $H2_IDLE WebSocket streams over $H2_IDLE_CONNECTIONS HTTP/2 connections per proxy; wsgate-h1: $H2_IDLE connections"
  for p in "${H2_PROXIES[@]}"; do idle "$p" "$H2_IDLE" idle "$H2_IDLE_CONNECTIONS"; done
  idle wsgate-h1 "$H2_IDLE" idle
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

# WebSockets over HTTP/2: 16 streams x 1 KiB and 64 streams x 16 B, each over one connection, 16
# messages in flight per stream; wsgate-h1 carries the same WebSockets one TCP+TLS connection each.
wanted h2-throughput && log "h2 throughput: $RUNS interleaved runs of ${DURATION}s per scenario"
wanted h2-throughput && for run in $(seq "$RUNS"); do
  for t in "${H2_PROXIES[@]}"; do
    record "$t" "$run" h2-throughput --url "${URL[$t]}" --connections 1 --streams 16 --size 1024 --inflight 16 --duration "$DURATION"
    record "$t" "$run" h2-throughput --url "${URL[$t]}" --connections 1 --streams 64 --size 16 --inflight 16 --duration "$DURATION"
  done
  record wsgate-h1 "$run" throughput --url "${URL[wsgate-h1]}" --connections 16 --size 1024 --inflight 16 --duration "$DURATION"
  record wsgate-h1 "$run" throughput --url "${URL[wsgate-h1]}" --connections 64 --size 16 --inflight 16 --duration "$DURATION"
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

# The cost of each kind of route auth on the handshake rate: plain wsgate (no auth; it gets the same
# header and ignores it), a JWT verified with an EC P-256 and an RSA 2048 public key, and forward auth
# to a local nginx. Keys and tokens are made for this run only.
AUTH_TARGETS=(wsgate wsgate-jwt-es256 wsgate-jwt-rs256 wsgate-forward)
if wanted auth-handshakes; then
  log "auth handshake rate: 16 workers, none / jwt ES256 / jwt RS256 / forward auth; $RUNS interleaved runs"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/ec.pem" 2>/dev/null
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rsa.pem" 2>/dev/null
  openssl pkey -in "$WORK/ec.pem" -pubout -out "$WORK/ec.pub.pem"
  openssl pkey -in "$WORK/rsa.pem" -pubout -out "$WORK/rsa.pub.pem"
  ES256=$(make_jwt ES256 "$WORK/ec.pem")
  RS256=$(make_jwt RS256 "$WORK/rsa.pem")
  start_auth_service
  start_wsgate wsgate-jwt-es256 false "" "{ jwt: { keys: \"$WORK/ec.pub.pem\" } }"
  start_wsgate wsgate-jwt-rs256 false "" "{ jwt: { keys: \"$WORK/rsa.pub.pem\" } }"
  start_wsgate wsgate-forward false "" "{ forward: { url: \"http://127.0.0.1:$AUTH_PORT/auth\", timeout: 2s } }"
  declare -A TOKEN=([wsgate]=$ES256 [wsgate-jwt-es256]=$ES256 [wsgate-jwt-rs256]=$RS256 [wsgate-forward]=$ES256)
  # Each token is good (101) and each auth route is closed to a request without one: a route that
  # let everything in, or refused everything, would measure nothing about auth.
  for t in "${AUTH_TARGETS[@]}"; do
    with=$(upgrade_status "${URL[$t]}" "Authorization: Bearer ${TOKEN[$t]}")
    without=$(upgrade_status "${URL[$t]}")
    log "$t: $with with its token, $without without"
    if [[ $with != 101 ]] || { [[ $t != wsgate ]] && [[ $without == 101 ]]; }; then
      log "$t: auth is not in force (see $WORK/$t.log: $(tail -3 "$WORK/$t.log" 2>/dev/null | tr '\n' ' '))"
      exit 1
    fi
  done
  for run in $(seq "$RUNS"); do
    for t in "${AUTH_TARGETS[@]}"; do
      SCENARIO=auth record "$t" "$run" handshakes --url "${URL[$t]}" --concurrency 16 --duration "$DURATION" \
        --header "Authorization: Bearer ${TOKEN[$t]}"
      sleep 1
    done
  done
  for t in wsgate-jwt-es256 wsgate-jwt-rs256 wsgate-forward auth-service; do stop "$t"; done
fi

wanted tls-handshakes && log "tls handshake rate: 16 workers, a full TLS 1.3 handshake per session; $RUNS interleaved runs"
wanted tls-handshakes && for run in $(seq "$RUNS"); do
  for t in "${TLS_PROXIES[@]}"; do
    record "$t" "$run" handshakes --url "${URL[$t]}" --concurrency 16 --duration "$DURATION"
    sleep 1
  done
done

# Plain HTTP/2 GETs through each proxy to the static backend: h2load, 8 connections x 16 streams;
# wsgate-h1 gets the same 128 requests in flight over HTTP/1.1 as 128 connections of one each.
wanted h2-requests && log "h2 requests: $H2_REQUESTS GETs per run, 8 connections x 16 streams; $RUNS interleaved runs"
wanted h2-requests && for run in $(seq "$RUNS"); do
  for t in "${H2_PROXIES[@]}" nginx-h2; do
    record "$t" "$run" requests --url "https://${URL[$t]#wss://}static" -n "$H2_REQUESTS" -c 8 -m 16
  done
  record wsgate-h1 "$run" requests --url "https://${URL[wsgate-h1]#wss://}static" -n "$H2_REQUESTS" -c 128 -m 1 --h1
done

# The admin API (issue 16): wsgate's throughput while a tap is attached to one more tunnel, then the
# listing of many open tunnels.
if wanted tap; then
  log "tap: wsgate throughput alone and with a tapped tunnel beside it (10 ms trickle, then a flood); $RUNS interleaved runs"
  tap_mode wsgate
fi
if wanted tunnels-list; then
  log "tunnels-list: GET /tunnels with $TUNNELS_LIST WebSockets open over $TUNNELS_LIST_CONNECTIONS HTTP/2 connections"
  tunnels_list_mode "$TUNNELS_LIST" "$TUNNELS_LIST_CONNECTIONS"
fi

BENCH_SMOKE=$SMOKE python3 scripts/bench/report.py "$RESULTS" | tee "$OUT/table.txt"
