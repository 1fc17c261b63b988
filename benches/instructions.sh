#!/usr/bin/env bash
# Instructions per request, flowgate vs the bare Pingora passthrough, counted by callgrind.
#
#   benches/instructions.sh              # 10 s of load per scenario (about 3 minutes)
#   DURATION=5 benches/instructions.sh
#
# rps on a shared 2-core machine moves ±25 % from run to run; user-space instructions per
# request do not, so this is the number that shows what flowgate's own work costs on top of
# Pingora. Each proxy runs under `valgrind --tool=callgrind` (about 50× slower, so the load is
# light: `wrk -t1 -c16`); counters are zeroed after a warm-up and dumped after the load, and the
# total is divided by the requests wrk completed. Kernel time (sockets) is not counted: it is
# about the same per request for both, and a little more for flowgate, whose upstream requests
# carry the trusted headers.
#
#   pt-init / fg-init        the same init requests (docs' example context, 10,000 sessions)
#   pt-session / fg-session  the same session request; flowgate re-attaches the stored context
#
# Per-function detail: KEEP=1 keeps the callgrind files and prints where they are; then
# callgrind_annotate --inclusive=yes <file>.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
# shellcheck source=benches/common.sh
. benches/common.sh
ensure_packages build callgrind
build_release

WORK=$(mktemp -d /tmp/flowgate-instr.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  sleep 0.2
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

UP=$(free_port)
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon on;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP; location / { return 200 "ok\n"; } }
}
EOF
"$NGINX" -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log"
wait_port "$UP"

write_init_lua "$WORK/init.lua"
cat >"$WORK/session.lua" <<EOF
request = function()
  return wrk.format("GET", "/public_FlowWidget/chat/poll?siteid=bench&jsSessionId=s42")
end
EOF

# measure NAME LUA -- COMMAND...: instructions per request of COMMAND under LUA's load.
measure() {
  local name=$1 lua=$2 port
  shift 3
  port=$(free_port)
  local cmd=("${@//PORT/$port}")
  valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.out" "${cmd[@]}" \
    >"$WORK/$name.log" 2>&1 &
  local vg=$!
  PIDS+=("$vg")
  wait_port "$port"
  # Warm-up (also stores the sessions the session scenario reads back).
  wrk -t1 -c16 -d3s -s "$WORK/init.lua" "http://127.0.0.1:$port/" >/dev/null
  callgrind_control -z "$vg" >/dev/null 2>&1
  local out
  out=$(wrk -t1 -c16 -d"${DURATION}s" -s "$lua" "http://127.0.0.1:$port/")
  callgrind_control -d "$vg" >/dev/null 2>&1
  kill "$vg" 2>/dev/null || true
  wait "$vg" 2>/dev/null || true
  local reqs dump ir
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  dump=$(ls "$WORK/$name.out".* | sort -V | tail -1)
  ir=$(awk '/^summary:/ {print $2}' "$dump")
  printf '%s\t%s\t%s\n' "$name" "$reqs" "$ir" >>"$WORK/results.tsv"
  awk -v n="$name" -v r="$reqs" -v i="$ir" \
    'BEGIN { printf "  %-11s %7d requests  %9.0f instructions/request\n", n, r, i / r }'
}

ADMIN=$(free_port)
cat >"$WORK/flowgate.yaml" <<EOF
admin: "127.0.0.1:$ADMIN"
upstreams: ["127.0.0.1:$UP"]
log: { access: false, level: warn }
server:
  threads: 1
  pid_file: "$WORK/flowgate.pid"
  upgrade_sock: "$WORK/flowgate.sock"
  grace_period_seconds: 0
EOF

echo "instructions per request (callgrind, user space), wrk -t1 -c16, ${DURATION}s per scenario:"
measure pt-init "$WORK/init.lua" -- "$PASSTHROUGH" "127.0.0.1:PORT" "127.0.0.1:$UP" 1 true
measure fg-init "$WORK/init.lua" -- "$FLOWGATE" run -c "$WORK/flowgate.yaml" --listen "127.0.0.1:PORT"
measure pt-session "$WORK/session.lua" -- "$PASSTHROUGH" "127.0.0.1:PORT" "127.0.0.1:$UP" 1 true
measure fg-session "$WORK/session.lua" -- "$FLOWGATE" run -c "$WORK/flowgate.yaml" --listen "127.0.0.1:PORT"

python3 - "$WORK/results.tsv" <<'EOF'
import sys
per = {}
for line in open(sys.argv[1]):
    name, reqs, ir = line.split()
    per[name] = int(ir) / int(reqs)
for route in ("init", "session"):
    pt, fg = per[f"pt-{route}"], per[f"fg-{route}"]
    print(f"{route:8} flowgate adds {fg - pt:7,.0f} instructions/request; pt/fg = {pt / fg:.2f}")
EOF
[ -n "${KEEP:-}" ] && echo "callgrind files: $WORK/*.out.*"
exit 0
