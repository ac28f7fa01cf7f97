# Sourced by scripts/bench.sh: the processes a run starts besides wsgate, as its functions (they use
# its variables: WORK, CERT, KEY, PROXY_CPU, LOAD_CPU, PIDS, PID, URL, the ports, wait_port).
# shellcheck shell=bash disable=SC2004,SC2034 # PID and URL are bench.sh's associative arrays

# start_nginx NAME [tls|h2]: an nginx process of its own (so that its worker's RSS is its alone); with
# `tls`, TLS 1.3 only, with neither session tickets nor a session cache, so nothing resumes; `h2` adds
# ALPN h2 and a /static location proxied to the static backend over kept-alive HTTP/1.1.
start_nginx() {
  local name=$1 tls=${2:-} port dir=$WORK/$1 scheme=ws host=127.0.0.1 ssl="" ssl_conf="" static="" pool=""
  port=$(free_port)
  if [[ -n $tls ]]; then
    scheme=wss host=localhost ssl=" ssl"
    ssl_conf="ssl_certificate $CERT; ssl_certificate_key $KEY; ssl_protocols TLSv1.3;
    ssl_session_tickets off; ssl_session_cache off;"
  fi
  if [[ $tls == h2 ]]; then
    # keepalive_requests bounds HTTP/2 requests per connection too (default 1,000, then a GOAWAY).
    ssl=" ssl http2"
    ssl_conf+=" keepalive_requests 10000000;"
    pool="upstream static { server 127.0.0.1:$STATIC_PORT; keepalive 64; }"
    static="location /static {
      proxy_pass http://static;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }"
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
  $pool
  server {
    listen 127.0.0.1:$port$ssl backlog=4096;
    $ssl_conf
    $static
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

# start_haproxy NAME [tls|h2]: as start_nginx; with `tls`, TLS 1.3 only, no tickets and no session
# cache; `h2` adds ALPN h2 (HAProxy 2.6 answers RFC 8441 extended CONNECT and tunnels it to the HTTP/1.1
# backend as an Upgrade) and, when the static backend runs, /static to it.
start_haproxy() {
  local name=$1 tls=${2:-} port scheme=ws host=127.0.0.1 ssl="" cache="" use_static="" static=""
  port=$(free_port)
  if [[ -n $tls ]]; then
    scheme=wss host=localhost
    ssl=" ssl crt $WORK/combined.pem ssl-min-ver TLSv1.3 no-tls-tickets"
    cache="  tune.ssl.cachesize 0"
  fi
  if [[ $tls == h2 ]]; then
    ssl+=" alpn h2,http/1.1"
    if [[ -n ${STATIC_PORT:-} ]]; then
      use_static="  use_backend static if { path_beg /static }"
      static="backend static
  server static 127.0.0.1:$STATIC_PORT maxconn 9990"
    fi
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
$use_static
  default_backend echo
backend echo
  server echo 127.0.0.1:$ECHO_PORT maxconn 9990
$static
CONF
  "${PROXY_CPU[@]}" haproxy -db -f "$WORK/$name.cfg" >"$WORK/$name.log" 2>&1 &
  PID[$name]=$!
  PIDS+=($!)
  wait_port "$port"
  URL[$name]=$scheme://$host:$port/
}

# helper_nginx NAME PORT LOCATION: an nginx that is not under test, on the load tool's core: one
# worker, keep-alive, listening on PORT with LOCATION (an nginx `location` block) as its one server's.
helper_nginx() {
  local name=$1 port=$2 location=$3 dir=$WORK/$1
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port backlog=4096;
    $location
  }
}
CONF
  "${LOAD_CPU[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" &
  PID[$name]=$!
  PIDS+=($!)
  wait_port "$port"
}

# start_auth_service: the forward-auth service: /auth answers 204 when an Authorization header came
# along and 401 otherwise, so that a wsgate which never asks it shows up as a route open without a
# token.
start_auth_service() {
  AUTH_PORT=$(free_port)
  # shellcheck disable=SC2016 # nginx's variable, not the shell's
  helper_nginx auth-service "$AUTH_PORT" \
    'location /auth { if ($http_authorization = "") { return 401; } return 204; }'
}

# start_static: the backend of h2-requests: a 6-byte 200 for every request; every proxy reaches it
# over HTTP/1.1.
start_static() {
  STATIC_PORT=$(free_port)
  helper_nginx static "$STATIC_PORT" 'location / { default_type text/plain; return 200 "hello\n"; }'
}
