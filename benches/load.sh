#!/usr/bin/env bash
# Load benchmark: flowgate against its baselines, measured in one run, alternating.
#
#   benches/load.sh                 # 5 rounds of 10 s per scenario (about 8 minutes)
#   ROUNDS=1 DURATION=3 benches/load.sh   # a quick look
#   THREADS=2 benches/load.sh       # two workers for each proxy (nginx worker_processes 2)
#   H2C=false POOL=16 benches/load.sh     # flowgate's server.h2c and upstream keep-alive pool
#
# Scenarios, each `wrk -t1 -c$CONNS` against THREADS workers (nginx worker_processes, Pingora
# threads; 1 by default) in front of the same fixed nginx upstream that answers 200 "ok":
#   direct       straight to the upstream (the ceiling)
#   nginx        nginx as a plain reverse proxy (what a user would otherwise deploy)
#   passthrough  bare Pingora reverse proxy, no logic (examples/passthrough.rs: the floor)
#   pt-init      the passthrough fed fg-init's exact requests (same URLs and sizes): the floor
#                for fg-init, so fg-init / pt-init is the cost of flowgate's own work
#   fg-init      flowgate init requests with the seed's context, 10,000 distinct sessions
#   fg-session   flowgate session requests that get the stored context re-attached
#   fgr-init     fg-init on a second flowgate whose store is a local Redis (one SET … EX each)
#   fgr-session  fg-session on that flowgate (one GET each)
# Printed: median rps, p50, p99, CPU µs per request of the proxy process, ratios, flowgate's RSS
# with 10,000 stored sessions, and p99 at light load (-c4) for flowgate vs passthrough.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
WORK_STEALING=${WORK_STEALING:-true}
H2C=${H2C:-true}
POOL=${POOL:-128}

# shellcheck source=benches/common.sh
. benches/common.sh
ensure_packages build load
build_release

WORK=$(mktemp -d /tmp/flowgate-load.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx-up/nginx.pid" ] && kill "$(cat "$WORK/nginx-up/nginx.pid")" 2>/dev/null || true
  [ -f "$WORK/nginx-rp/nginx.pid" ] && kill "$(cat "$WORK/nginx-rp/nginx.pid")" 2>/dev/null || true
  sleep 0.2
  rm -rf "$WORK"
}
trap cleanup EXIT

UP=$(free_port); RP=$(free_port); PT=$(free_port); FG=$(free_port); ADMIN=$(free_port)
FGR=$(free_port); ADMIN_R=$(free_port); RD=$(free_port)

nginx_conf() { # dir port body [workers]
  mkdir -p "$1"
  cat >"$1/nginx.conf" <<EOF
worker_processes ${4:-1};
daemon on;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  $3
}
EOF
}
nginx_conf "$WORK/nginx-up" "$UP" "server { listen 127.0.0.1:$UP; location / { return 200 \"ok\n\"; } }"
nginx_conf "$WORK/nginx-rp" "$RP" "upstream up { server 127.0.0.1:$UP; keepalive 128; }
  server { listen 127.0.0.1:$RP; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }" "$THREADS"
"$NGINX" -p "$WORK/nginx-up" -c "$WORK/nginx-up/nginx.conf" -e "$WORK/nginx-up/error.log"
"$NGINX" -p "$WORK/nginx-rp" -c "$WORK/nginx-rp/nginx.conf" -e "$WORK/nginx-rp/error.log"
wait_port "$UP"; wait_port "$RP"

"$PASSTHROUGH" "127.0.0.1:$PT" "127.0.0.1:$UP" "$THREADS" "$WORK_STEALING" >"$WORK/passthrough.log" 2>&1 &
PIDS+=($!); PT_PID=$!

cat >"$WORK/flowgate.yaml" <<EOF
listen: "127.0.0.1:$FG"
admin: "127.0.0.1:$ADMIN"
upstreams: ["127.0.0.1:$UP"]
log: { access: false, level: warn }
server:
  threads: $THREADS
  work_stealing: $WORK_STEALING
  h2c: $H2C
  upstream_keepalive_pool_size: $POOL
  pid_file: "$WORK/flowgate.pid"
  upgrade_sock: "$WORK/flowgate.sock"
  grace_period_seconds: 0
EOF
"$FLOWGATE" run -c "$WORK/flowgate.yaml" >"$WORK/flowgate.log" 2>&1 &
PIDS+=($!); FG_PID=$!
redis-server --bind 127.0.0.1 --port "$RD" --save "" --appendonly no --daemonize no \
  >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
sed -e "s/^listen: .*/listen: \"127.0.0.1:$FGR\"/" -e "s/^admin: .*/admin: \"127.0.0.1:$ADMIN_R\"/" \
  -e "s#$WORK/flowgate\.#$WORK/flowgate-redis.#g" "$WORK/flowgate.yaml" >"$WORK/flowgate-redis.yaml"
printf 'redis: { url: "redis://127.0.0.1:%s" }\n' "$RD" >>"$WORK/flowgate-redis.yaml"
wait_port "$RD"
"$FLOWGATE" run -c "$WORK/flowgate-redis.yaml" >"$WORK/flowgate-redis.log" 2>&1 &
PIDS+=($!); FGR_PID=$!
wait_port "$PT"; wait_port "$FG"; wait_port "$FGR"

write_init_lua "$WORK/init.lua"
SESSION_PATH="/public_FlowWidget/chat/poll?siteid=bench&jsSessionId=s42"
curl -s -o /dev/null "http://127.0.0.1:$FG/public_FlowWidget/init?siteid=bench&jsSessionId=s42&visitor_context=$SEED_CONTEXT"
curl -s -o /dev/null "http://127.0.0.1:$FGR/public_FlowWidget/init?siteid=bench&jsSessionId=s42&visitor_context=$SEED_CONTEXT"

# pid(s) whose CPU a scenario charges: the proxy in the middle (none for direct).
nginx_workers() { pgrep -P "$(cat "$WORK/$1/nginx.pid")" | tr '\n' ' '; }
cpu_ticks() { # pids...
  local t=0
  for p in "$@"; do
    read -r -a f <"/proc/$p/stat"
    t=$((t + f[13] + f[14]))
  done
  echo "$t"
}
HZ=$(getconf CLK_TCK)

# Latency text (e.g. 1.23ms, 950.00us, 1.10s) → microseconds.
to_us() { awk -v v="$1" 'BEGIN{ n=v+0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n*1000; else if (v ~ /s$/) print n*1000000; else print n }'; }

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
run() { # name url conns [lua]
  local name=$1 url=$2 conns=$3 lua=${4:-} pids
  case $name in
    *direct*) pids="" ;;
    *nginx*) pids=$(nginx_workers nginx-rp) ;;
    *passthrough*|pt-*) pids=$PT_PID ;;
    fgr-*|warmup-fgr) pids=$FGR_PID ;;
    *) pids=$FG_PID ;;
  esac
  local before after out
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pids)
  if [ -n "$lua" ]; then
    out=$(wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s "$lua" "$url")
  else
    out=$(wrk -t1 -c"$conns" -d"${DURATION}s" --latency "$url")
  fi
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pids)
  local rps p50 p99 reqs errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(to_us "$(awk '$1=="50%" {print $2}' <<<"$out")")
  p99=$(to_us "$(awk '$1=="99%" {print $2}' <<<"$out")")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  [ -n "$errors" ] && echo "  $name: $errors" >&2
  local cpu_us
  cpu_us=$(awk -v d=$((after - before)) -v hz="$HZ" -v n="$reqs" 'BEGIN{ if (n>0) printf "%.1f", d*1000000/hz/n; else print "nan" }')
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rps" "$p50" "$p99" "$cpu_us" >>"$RESULTS"
  printf '  %-12s %10s rps  p50 %8s µs  p99 %8s µs  cpu %6s µs/req\n' "$name" "$rps" "$p50" "$p99" "$cpu_us"
}

# Both proxies steal work only from two threads on (one thread runs single-threaded).
stealing=$WORK_STEALING; [ "$THREADS" -gt 1 ] || stealing="false (one thread)"
echo "flowgate load benchmark: $ROUNDS rounds × ${DURATION}s, wrk -t1 -c$CONNS, threads=$THREADS work_stealing=$stealing h2c=$H2C pool=$POOL"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm-up (not recorded): fills the store with the 10,000 sessions.
DURATION=2 run warmup-fg "http://127.0.0.1:$FG/" "$CONNS" "$WORK/init.lua" >/dev/null
DURATION=2 run warmup-fgr "http://127.0.0.1:$FGR/" "$CONNS" "$WORK/init.lua" >/dev/null
: >"$RESULTS"
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r"
  run direct "http://127.0.0.1:$UP/" "$CONNS"
  run nginx "http://127.0.0.1:$RP/" "$CONNS"
  run passthrough "http://127.0.0.1:$PT/" "$CONNS"
  run pt-init "http://127.0.0.1:$PT/" "$CONNS" "$WORK/init.lua"
  run fg-init "http://127.0.0.1:$FG/" "$CONNS" "$WORK/init.lua"
  run fg-session "http://127.0.0.1:$FG$SESSION_PATH" "$CONNS"
  run fgr-init "http://127.0.0.1:$FGR/" "$CONNS" "$WORK/init.lua"
  run fgr-session "http://127.0.0.1:$FGR$SESSION_PATH" "$CONNS"
done
echo "light load (-c4), p99 added by flowgate's logic:"
run light-passthrough "http://127.0.0.1:$PT/" 4 "$WORK/init.lua"
run light-fg-init "http://127.0.0.1:$FG/" 4 "$WORK/init.lua"

RSS_KB=$(awk '/^VmRSS:/ {print $2}' "/proc/$FG_PID/status")
SESSIONS=$(curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '/^flowgate_store_calls_total\{op="put",result="ok"\}/ {print $2}')
REDIS_KEYS=$(redis-cli -p "$RD" dbsize)
REDIS_USED=$(redis-cli -p "$RD" info memory | awk -F: '/^used_memory:/ {print $2+0}')
REDIS_EMPTY=$(redis-cli -p "$RD" info memory | awk -F: '/^used_memory_startup:/ {print $2+0}')
REDIS_ERRORS=$(curl -s "http://127.0.0.1:$ADMIN_R/metrics" | awk '/^flowgate_store_calls_total\{op="(get|put)",result="(error|timeout)"\}/ {n+=$2} END {print n+0}')

echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "medians over $ROUNDS rounds:"
python3 - "$RESULTS" "$RSS_KB" "$SESSIONS" "$REDIS_KEYS" "$REDIS_USED" "$REDIS_EMPTY" "$REDIS_ERRORS" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {}
for name, rps, p50, p99, cpu in rows:
    by.setdefault(name, []).append((float(rps), float(p50), float(p99), float(cpu)))
med = {n: [statistics.median(c) for c in zip(*v)] for n, v in by.items()}
print(f"| scenario | rps | p50 µs | p99 µs | proxy CPU µs/req |")
print(f"| --- | ---: | ---: | ---: | ---: |")
for n in ["direct", "nginx", "passthrough", "pt-init", "fg-init", "fg-session", "fgr-init", "fgr-session", "light-passthrough", "light-fg-init"]:
    if n in med:
        rps, p50, p99, cpu = med[n]
        cpu_s = "-" if n == "direct" else f"{cpu:.1f}"
        print(f"| {n} | {rps:,.0f} | {p50:,.0f} | {p99:,.0f} | {cpu_s} |")
def ratio(a, b, i=0):
    return med[a][i] / med[b][i] if a in med and b in med and med[b][i] else float("nan")
print()
print(f"passthrough / nginx rps:     {ratio('passthrough', 'nginx'):.2f}")
print(f"fg-init / passthrough rps:   {ratio('fg-init', 'passthrough'):.2f}")
print(f"fg-init / pt-init rps:       {ratio('fg-init', 'pt-init'):.2f}  (same requests through the bare passthrough)")
print(f"fg-session / passthrough rps:{ratio('fg-session', 'passthrough'):.2f}")
print(f"fg-init / nginx rps:         {ratio('fg-init', 'nginx'):.2f}")
print(f"fg-session / nginx rps:      {ratio('fg-session', 'nginx'):.2f}")
if "light-fg-init" in med and "light-passthrough" in med:
    print(f"p99 added at light load:     {(med['light-fg-init'][2] - med['light-passthrough'][2]) / 1000:.3f} ms")
print(f"flowgate RSS after the run:  {int(sys.argv[2]) / 1024:.1f} MiB (10,000 sessions stored; {sys.argv[3] or '?'} puts)")
print(f"fgr-init / fg-init rps:      {ratio('fgr-init', 'fg-init'):.2f}  (Redis SET vs in-process)")
print(f"fgr-session / fg-session rps:{ratio('fgr-session', 'fg-session'):.2f}  (Redis GET vs in-process)")
keys, used, empty = int(sys.argv[4] or 0), int(sys.argv[5] or 0), int(sys.argv[6] or 0)
if keys:
    print(f"Redis: {keys} sessions, {(used - empty) / keys:,.0f} bytes each (used_memory); "
          f"{sys.argv[7]} store errors or timeouts")
EOF
