# Shared by benches/load.sh, benches/instructions.sh and benches/instructions-context.sh (sourced, not run).

# The system packages (wrk, nginx, valgrind, Redis): ensure_packages load|callgrind.
# shellcheck source=scripts/lib/packages.sh
. scripts/lib/packages.sh

# Builds the release binaries and sets FLOWGATE, PASSTHROUGH and NGINX.
build_release() {
  cargo build --release --quiet --bin flowgate --example passthrough
  local target=${CARGO_TARGET_DIR:-target}
  FLOWGATE=$target/release/flowgate
  PASSTHROUGH=$target/release/examples/passthrough
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT: returns once something accepts on PORT, fails after 30 s.
wait_port() {
  local _
  for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$(basename "$0"): nothing listens on $1" >&2
  exit 1
}

# The docs' example context (product docs, section 2), base64.
SEED_CONTEXT=$(printf '%s' '{"account_id":"USR-84920","plan":"Pro","last_order":"#ORD-20241122","ims_username":"Jane Smith","ims_email":"jane@example.com"}' | base64 -w0)

# write_init_lua FILE: a wrk script sending init requests with the seed context over 10,000
# distinct chat sessions.
write_init_lua() {
  cat >"$1" <<LUA
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/public_FlowWidget/init?siteid=bench&jsSessionId=s" .. (n % 10000) .. "&visitor_context=$SEED_CONTEXT")
end
LUA
}
