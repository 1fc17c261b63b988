#!/usr/bin/env bash
# Idle connections: RSS and CPU of flowgate holding CONNS idle keep-alive client connections
# and WS idle WebSockets, against nginx holding the same.
#
#   benches/idle.sh                       # 10,000 keep-alive + 1,000 WebSockets, 10 s idle
#   CONNS=2000 WS=200 HOLD=5 benches/idle.sh
#   FLOWGATE=path/to/flowgate benches/idle.sh   # a built binary: no cargo build
#   NGINX=path/to/nginx                         # default: the one on PATH
#
# One worker each (Pingora threads 1, nginx worker_processes 1), the same upstream
# (benches/idle_upstream.py: `200 ok` for plain requests, a WebSocket echo after a 101).
# benches/idle_client.py opens the connections in batches of 250: each keep-alive connection
# sends one request and stays open; each WebSocket upgrades, gets one frame echoed and stays
# open (the proxy holds two sockets per WebSocket, as nginx does). Printed per proxy: RSS
# before, with the keep-alive connections, with the WebSockets added, bytes per connection of
# each kind (RSS difference / count), CPU spent opening them and over HOLD idle seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-10000}
WS=${WS:-1000}
HOLD=${HOLD:-10}

# Each proxy holds CONNS + 2 × WS sockets (and its upstream pool); the client CONNS + WS.
need=$((CONNS + 2 * WS + 1024))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
  echo "idle.sh: the open-file hard limit ($hard) is below $need" >&2
  exit 1
fi
ulimit -n "$need"

# shellcheck source=benches/common.sh
. benches/common.sh
if [ -n "${FLOWGATE:-}" ]; then
  ensure_packages idle
  NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
else
  ensure_packages build idle
  build_release
fi

WORK=$(mktemp -d /tmp/flowgate-idle.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  sleep 0.2
  rm -rf "$WORK"
}
trap cleanup EXIT

UP=$(free_port); RP=$(free_port); FG=$(free_port); ADMIN=$(free_port)

python3 benches/idle_upstream.py "$UP" &
PIDS+=($!)
wait_port "$UP"

cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile $need;
daemon on;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections $need; }
http {
  access_log off;
  keepalive_timeout 600s;
  keepalive_requests 1000000;
  map \$http_upgrade \$connection_upgrade { default upgrade; "" ""; }
  upstream up { server 127.0.0.1:$UP; keepalive 128; }
  server {
    listen 127.0.0.1:$RP backlog=4096;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_read_timeout 600s;
    }
  }
}
EOF
"$NGINX" -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log"
wait_port "$RP"

cat >"$WORK/flowgate.yaml" <<EOF
listen: "127.0.0.1:$FG"
admin: "127.0.0.1:$ADMIN"
upstreams: ["127.0.0.1:$UP"]
log: { access: false, level: warn }
timeouts: { websocket_idle_seconds: 600 }
server:
  threads: 1
  idle_timeout_seconds: 600
  pid_file: "$WORK/flowgate.pid"
  upgrade_sock: "$WORK/flowgate.sock"
  grace_period_seconds: 0
EOF
"$FLOWGATE" run -c "$WORK/flowgate.yaml" >"$WORK/flowgate.log" 2>&1 &
PIDS+=($!); FG_PID=$!
wait_port "$FG"

echo "idle connections: $CONNS keep-alive + $WS WebSockets, held ${HOLD}s; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-9s %9s %12s %12s %13s %13s %11s %12s\n' proxy "RSS0 MiB" "+keep-alive" "+WebSockets" \
  "B/keep-alive" "B/WebSocket" "setup CPU" "idle CPU"
measure() { # name port pids...
  local name=$1 port=$2
  shift 2
  local r
  r=$(python3 benches/idle_client.py "$port" "$CONNS" "$WS" "$HOLD" "$@")
  awk -v n="$name" -v c="$CONNS" -v w="$WS" -v h="$HOLD" '{
    printf "%-9s %9.1f %12.1f %12.1f %13.0f %13.0f %9d ms %9d ms\n", n, $1/1024, $2/1024, $3/1024,
      ($2-$1)*1024/c, ($3-$2)*1024/w, $4, $5
  }' <<<"$r"
}
measure flowgate "$FG" "$FG_PID"
# shellcheck disable=SC2046
measure nginx "$RP" $(pgrep -P "$(cat "$WORK/nginx.pid")")
