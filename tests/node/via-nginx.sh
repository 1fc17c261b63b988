#!/usr/bin/env bash
# The baseline: the chat fixtures through nginx configured the usual way for WebSockets
# (nginx.conf.in beside this script). Starts three backends and nginx on free loopback ports,
# runs one check per behaviour of the drop-in table (slow cases scaled down with 2 s timeouts),
# prints `PASS|FAIL <row>: <what> -> <observed>` per check and a closing `N passed, N failed`.
# PASS means nginx behaved as the table's nginx column says.
#
#   tests/node/via-nginx.sh            (needs nginx and node; KEEP=1 keeps the temp directory)
set -euo pipefail
cd "$(dirname "$0")"

command -v nginx >/dev/null || { echo "via-nginx.sh: needs nginx (apt-get install -y nginx)" >&2; exit 2; }
command -v node >/dev/null || { echo "via-nginx.sh: needs node and npm" >&2; exit 2; }
[ -d node_modules ] || npm ci --no-audit --no-fund >&2

SHORT=2s                                  # the short proxy_read_timeout of /short/ and /slowping-short/
DIR=$(mktemp -d /tmp/flowgate-nginx.XXXXXX)
chmod 755 "$DIR"
declare -A PID PORT
NGINX_PID=""

cleanup() {
  for name in "${!PID[@]}"; do kill "${PID[$name]}" 2>/dev/null || true; done
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "# kept $DIR" >&2; else rm -rf "$DIR"; fi
}
trap cleanup EXIT

# j JSON path: one field of a JSON line (dotted path; arrays and objects printed as JSON).
j() {
  node -e '
    let v = JSON.parse(process.argv[1]);
    for (const k of process.argv[2].split(".")) v = v == null ? v : v[k];
    console.log(v === undefined ? "" : v !== null && typeof v === "object" ? JSON.stringify(v) : String(v));
  ' "$1" "$2"
}

# Waits (deadline in seconds) until FILE has a line matching REGEX.
wait_line() {
  local file=$1 re=$2 deadline=$((SECONDS + ${3:-15}))
  until grep -qE "$re" "$file" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "via-nginx.sh: no '$re' in $file" >&2; return 1; }
    sleep 0.05
  done
}

# start_backend NAME [flags…]: node chat-backend.js, waits for its ready line.
start_backend() {
  local name=$1; shift
  node chat-backend.js --node-id "$name" "$@" >"$DIR/$name.out" 2>"$DIR/$name.log" &
  PID[$name]=$!
  wait_line "$DIR/$name.out" '"ready":true'
  PORT[$name]=$(j "$(head -n1 "$DIR/$name.out")" port)
}

free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

start_nginx() {
  nginx -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/error.log" -g 'daemon off;' &
  NGINX_PID=$!
  local deadline=$((SECONDS + 15))
  until curl -s -o /dev/null "http://127.0.0.1:$NP/one/echo"; do
    [ $SECONDS -lt $deadline ] || { echo "via-nginx.sh: nginx did not start" >&2; cat "$DIR/error.log" >&2; exit 1; }
    sleep 0.05
  done
}

passed=0 failed=0
# report ROW WHAT OBSERVED CONDITION…: PASS when the condition (a command) succeeds.
report() {
  local row=$1 what=$2 observed=$3; shift 3
  if "$@"; then passed=$((passed + 1)); echo "PASS $row: $what -> $observed"
  else failed=$((failed + 1)); echo "FAIL $row: $what -> $observed"; fi
}
eq() { [ "$1" = "$2" ]; }
has() { [[ "$1" == *"$2"* ]]; }

# The clients' result is their last line (lines before it are progress events).
client() { node chat-client.js "$@" | tail -n1; }
rawws() { node raw-ws-client.js "$@" | tail -n1; }

start_backend A --port 0
start_backend B --port 0
start_backend P --port 0 --ping-interval-ms 3000 --ping-timeout-ms 2000
NP=$(free_port)
PP=$(free_port)
sed -e "s#@DIR@#$DIR#g" -e "s#@PORT@#$NP#g" -e "s#@PORT_PP@#$PP#g" -e "s#@PORT_A@#${PORT[A]}#g" -e "s#@PORT_B@#${PORT[B]}#g" \
  -e "s#@PORT_P@#${PORT[P]}#g" -e "s#@SHORT@#$SHORT#g" nginx.conf.in >"$DIR/nginx.conf"
mkdir -p "$DIR"/{client_body,proxy,fastcgi,uwsgi,scgi}
chmod 777 "$DIR"/{client_body,proxy,fastcgi,uwsgi,scgi}
start_nginx
U=http://127.0.0.1:$NP
W=ws://127.0.0.1:$NP
echo "# nginx $(nginx -v 2>&1 | sed 's#.*/##') on $U; backends A=${PORT[A]} B=${PORT[B]} P=${PORT[P]} (ping 3 s); temp $DIR"

# From here on a failing command is a failed check, not the end of the run.
set +e

SPOOF=(--header 'X-Forwarded-For: 6.6.6.6' --header 'X-Real-IP: 6.6.6.6' --header 'X-Flowgate-Status: accepted')
Q=(--query 'siteid=s1&jsSessionId=j1')

# --- one backend -------------------------------------------------------------------------------
R=one-backend
r=$(client --url "$U" --path /one/socket.io "${Q[@]}" "${SPOOF[@]}")
report $R "polling then upgrade" "$(j "$r" transport), upgraded=$(j "$r" upgraded)" eq "$(j "$r" upgraded)" true
report $R "forged X-Flowgate-Status on handshake and upgrade" \
  "$(j "$r" handshake.headers.x-flowgate-status) / $(j "$r" upgrade.headers.x-flowgate-status) (passes through)" \
  eq "$(j "$r" upgrade.headers.x-flowgate-status)" '["accepted"]'
r=$(client --url "$U" --path /one/socket.io --rooms)
report $R "rooms" "nodes=$(j "$r" nodes) delivered=$(j "$r" delivered)" eq "$(j "$r" ok)" true
r=$(client --url "$U" --path /one/socket.io --echo-bytes 10485760)
report $R "10 MB Socket.IO echo over websocket" "match=$(j "$r" match)" eq "$(j "$r" match)" true
r=$(client --url "$U" --path /one/socket.io --upgrade false --echo-bytes 10485760 --timeout-ms 30000)
report $R "10 MB Socket.IO echo over polling" "match=$(j "$r" match) $(j "$r" error)" eq "$(j "$r" match)" true
head -c 10485760 /dev/urandom >"$DIR/upload.bin"
r=$(curl -sS -H 'Expect: 100-continue' --data-binary @"$DIR/upload.bin" "$U/one/upload")
report $R "10 MB upload with Expect: 100-continue" \
  "bytes=$(j "$r" bytes), backend saw expect=$(j "$r" expect) framing=$(j "$r" content_length)/$(j "$r" transfer_encoding)" \
  eq "$(j "$r" sha256)" "$(sha256sum <"$DIR/upload.bin" | cut -d' ' -f1)"
direct=$(curl -sS "http://127.0.0.1:${PORT[A]}/download?bytes=52428800" | sha256sum | cut -d' ' -f1)
via=$(curl -sS "$U/one/download?bytes=52428800" | sha256sum | cut -d' ' -f1)
report $R "50 MB chunked download" "same bytes as direct: $([ "$direct" = "$via" ] && echo yes || echo no)" eq "$direct" "$via"
body=$(curl -sS "$U/one/sse?events=20&interval_ms=50")
report $R "SSE 20 events" "$(grep -c '^event: tick' <<<"$body") ticks, end=$(grep -c '^event: end' <<<"$body")" \
  eq "$(grep -c '^event: tick' <<<"$body")" 20
body=$(curl -sSN --max-time 3 "$U/one/sse?events=1&hold_ms=10000" 2>/dev/null || true)
report $R "SSE streamed, not buffered (first event while the stream is open)" \
  "$(grep -c '^event: tick' <<<"$body") event(s) within 3 s" has "$body" "event: tick"
body=$(curl -sS "$U/short/sse?events=4&interval_ms=1000")
report $R "SSE longer than a $SHORT read timeout, events 1 s apart" \
  "$(grep -c '^event: tick' <<<"$body") ticks, end=$(grep -c '^event: end' <<<"$body")" eq "$(grep -c '^event: end' <<<"$body")" 1
curl -sS -D "$DIR/gz.h" -o "$DIR/gz.b" "$U/one/gzip?bytes=100000"
want=$(tr -d '\r' <"$DIR/gz.h" | sed -n 's/^x-identity-sha256: //Ip')
got=$(gunzip -c <"$DIR/gz.b" | sha256sum | cut -d' ' -f1)
report $R "gzip body passed untouched" "$(tr -d '\r' <"$DIR/gz.h" | grep -i '^content-encoding')" eq "$want" "$got"
body=$(curl -sS "$U/one/chunked-then-die" 2>"$DIR/die.err"); rc=$?
report $R "backend dies mid-body" "curl exit $rc ($(head -c 80 "$DIR/die.err")), got '${body}'" eq "$rc" 18

# --- two backends --------------------------------------------------------------------------------
R=two-backends
r=$(client --url "$U" --path /rr/socket.io --timeout-ms 3000)
report $R "round robin, polling: no connect" \
  "ok=$(j "$r" ok) $(j "$r" error); first poll error: $(node -e '
    const t = (JSON.parse(process.argv[1]).trace || []).find((x) => x.type === "error" || x.type === "connect_error");
    console.log(t ? `${t.description} ${t.body || t.message}` : "none")' "$r")" eq "$(j "$r" ok)" false
r=$(client --url "$U" --path /rr/socket.io --transports websocket --rooms --timeout-ms 3000)
report $R "round robin, websocket only: rooms across nodes" \
  "nodes=$(j "$r" nodes) delivered=$(j "$r" delivered) peers=$(j "$r" peers)" eq "$(j "$r" ok)" false
r=$(client --url "$U" "${Q[@]}")
report $R "ip_hash: polling then upgrade" "node $(j "$r" node), $(j "$r" transport)" eq "$(j "$r" upgraded)" true
r=$(client --url "$U" --rooms)
report $R "ip_hash: rooms" "nodes=$(j "$r" nodes) delivered=$(j "$r" delivered)" eq "$(j "$r" ok)" true
# A node goes down under an open session: the client reconnects to the other one.
node chat-client.js --url "$U" "${Q[@]}" --reconnect-watch --count 2 --watch-ms 20000 >"$DIR/watch.out" 2>"$DIR/watch.err" &
WATCH=$!
wait_line "$DIR/watch.out" '"event":"connect"'
first=$(j "$(grep -m1 '"event":"connect"' "$DIR/watch.out")" node)
kill -9 "${PID[$first]}"; wait "${PID[$first]}" 2>/dev/null || true
wait $WATCH || true
r=$(tail -n1 "$DIR/watch.out")
report $R "ip_hash: node $first killed, the client reconnects" \
  "connects $(node -e 'console.log(JSON.parse(process.argv[1]).connects.map((c) => c.node).join(" then "))' "$r"), $(j "$r" connect_errors) connect errors" \
  eq "$(j "$r" ok)" true
start_backend "$first" --port "${PORT[$first]}"

# --- long-lived connections ------------------------------------------------------------------------
R=idle
r=$(rawws --url "$W/short/raw-ws" --idle-ms 1000)
report $R "raw websocket idle 1 s under a $SHORT read timeout" "echoed=$(j "$r" echoed)" eq "$(j "$r" echoed)" true
r=$(rawws --url "$W/short/raw-ws" --idle-ms 3500)
report $R "raw websocket idle 3.5 s under a $SHORT read timeout: closed" \
  "close $(j "$r" close.code) during $(j "$r" close.during) after $(j "$r" close.since_last_activity_ms) ms idle" eq "$(j "$r" echoed)" false
r=$(rawws --url "$W/one/raw-ws" --idle-ms 3500)
report $R "raw websocket idle 3.5 s under proxy_read_timeout 120s" "echoed=$(j "$r" echoed)" eq "$(j "$r" echoed)" true
r=$(client --url "$U" --path /slowping-short/socket.io --hold-ms 4000)
report $R "Socket.IO ping every 3 s under a $SHORT read timeout: dropped" \
  "ok=$(j "$r" ok) $(j "$r" error) ($(j "$r" disconnect.reason) after $(j "$r" disconnect.after_idle_ms) ms)" eq "$(j "$r" ok)" false
r=$(client --url "$U" --path /slowping/socket.io --hold-ms 4000)
report $R "Socket.IO ping every 3 s under proxy_read_timeout 120s" "same_sid=$(j "$r" same_sid)" eq "$(j "$r" ok)" true

R=long-poll
code=$(curl -s -o "$DIR/lp.b" -w '%{http_code}' "$U/short/longpoll?hold_ms=3500")
report $R "held 3.5 s under a $SHORT read timeout" "$code $(head -c 40 "$DIR/lp.b" | tr -d '\r\n' | sed 's/<[^>]*>//g'); error.log: $(grep -c 'upstream timed out' "$DIR/error.log") 'upstream timed out'" eq "$code" 504
code=$(curl -s -o /dev/null -w '%{http_code}' "$U/one/longpoll?hold_ms=3500")
report $R "held 3.5 s under proxy_read_timeout 120s" "$code" eq "$code" 200

# --- client identity ------------------------------------------------------------------------------
R=client-address
r=$(curl -sS -H 'X-Forwarded-For: 6.6.6.6' -H 'X-Real-IP: 6.6.6.6' "$U/one/echo")
report $R "HTTP with forged X-Forwarded-For / X-Real-IP" \
  "XFF $(j "$r" recorded.x-forwarded-for), X-Real-IP $(j "$r" recorded.x-real-ip), proto $(j "$r" recorded.x-forwarded-proto), host $(j "$r" recorded.x-forwarded-host)" \
  eq "$(j "$r" recorded.x-forwarded-for)" '["6.6.6.6, 127.0.0.1"]'
r=$(client --url "$U" --path /one/socket.io "${SPOOF[@]}")
report $R "Socket.IO handshake and upgrade with forged headers" \
  "handshake XFF $(j "$r" handshake.headers.x-forwarded-for) X-Real-IP $(j "$r" handshake.headers.x-real-ip); upgrade XFF $(j "$r" upgrade.headers.x-forwarded-for) X-Real-IP $(j "$r" upgrade.headers.x-real-ip)" \
  eq "$(j "$r" upgrade.headers.x-real-ip)" '["127.0.0.1"]'
r=$(rawws --url "$W/one/raw-ws" --whoami "${SPOOF[@]}")
report $R "raw websocket upgrade with forged headers" \
  "XFF $(j "$r" whoami.headers.x-forwarded-for) X-Real-IP $(j "$r" whoami.headers.x-real-ip)" \
  eq "$(j "$r" whoami.headers.x-forwarded-for)" '["6.6.6.6, 127.0.0.1"]'

R=proxy-protocol
for v in v1 v2; do
  r=$(client --url "http://127.0.0.1:$PP" --proxy-protocol $v --proxy-source 203.0.113.7:40000 "${SPOOF[@]}")
  report $R "Socket.IO over PROXY $v from 203.0.113.7" \
    "handshake XFF $(j "$r" handshake.headers.x-forwarded-for) X-Real-IP $(j "$r" handshake.headers.x-real-ip); upgrade X-Real-IP $(j "$r" upgrade.headers.x-real-ip)" \
    eq "$(j "$r" upgrade.headers.x-real-ip)" '["203.0.113.7"]'
  r=$(rawws --url "ws://127.0.0.1:$PP/raw-ws" --whoami --proxy-protocol $v --proxy-source '[2001:db8::7]:40000')
  report $R "raw websocket over PROXY $v from 2001:db8::7" \
    "XFF $(j "$r" whoami.headers.x-forwarded-for) X-Real-IP $(j "$r" whoami.headers.x-real-ip)" \
    eq "$(j "$r" whoami.headers.x-real-ip)" '["2001:db8::7"]'
done
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PP/echo")
report $R "plain HTTP without a PROXY header on that listener" \
  "HTTP $code (connection closed), error.log: $(grep -c 'broken header' "$DIR/error.log") 'broken header'" eq "$code" 000

# --- protocol hygiene -------------------------------------------------------------------------------
R=http10
curl -sS --http1.0 -D "$DIR/h10.h" -o "$DIR/h10.b" "$U/one/http10?chunks=3"
report $R "HTTP/1.0 client, streamed response" \
  "$(head -n1 "$DIR/h10.h" | tr -d '\r'), transfer-encoding: $(grep -ci '^transfer-encoding' "$DIR/h10.h"), connection: $(tr -d '\r' <"$DIR/h10.h" | sed -n 's/^connection: //Ip'), $(wc -l <"$DIR/h10.b") lines" \
  eq "$(grep -ci '^transfer-encoding' "$DIR/h10.h")" 0
R=long-target
for n in 8000 9000 65535 70000; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$U/one/echo?q=$(head -c "$n" /dev/zero | tr '\0' a)")
  # Below 65,535 bytes the code is only reported (nginx's default 8k large_client_header_buffers).
  want=$([ "$n" -ge 65535 ] && echo 414 || echo "$code")
  report $R "request target with a $n-byte query$([ "$n" -lt 65535 ] && echo ' (reported only)')" "$code" eq "$code" "$want"
done

# --- deploy: graceful quit with open WebSockets (last: nginx is gone afterwards) -----------------------
R=deploy
node chat-client.js --url "$U" --hold-ms 4000 >"$DIR/hold.out" 2>"$DIR/hold.err" &
HOLD=$!
node raw-ws-client.js --url "$W/one/raw-ws" --idle-ms 4000 >"$DIR/idle.out" 2>"$DIR/idle.err" &
IDLE=$!
wait_line "$DIR/hold.out" '"event":"holding"'
wait_line "$DIR/idle.out" '"event":"idle"'
kill -QUIT "$(cat "$DIR/nginx.pid")"
wait_line "$DIR/error.log" 'gracefully shutting down' 10 || true
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$U/one/echo" || true)
wait $HOLD || true
wait $IDLE || true
r=$(tail -n1 "$DIR/hold.out")
report $R "SIGQUIT with an open Socket.IO websocket" "ok=$(j "$r" ok) same_sid=$(j "$r" same_sid) $(j "$r" error)" eq "$(j "$r" ok)" true
r=$(tail -n1 "$DIR/idle.out")
report $R "SIGQUIT with an open raw websocket" "echoed=$(j "$r" echoed)" eq "$(j "$r" echoed)" true
report $R "new requests after SIGQUIT" "HTTP $code" eq "$code" 000
deadline=$((SECONDS + 15))
while kill -0 "$NGINX_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
report $R "nginx exits once the tunnels are closed" "$(kill -0 "$NGINX_PID" 2>/dev/null && echo running || echo exited)" \
  eval '! kill -0 "$NGINX_PID" 2>/dev/null'
NGINX_PID=""

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
