#!/usr/bin/env bash
# Instructions per `Pipeline::run` on each benchmark payload, and per whole `inspect --jsonl`
# line (reading the line, the pipeline, writing the answer), counted by callgrind.
#
#   benches/instructions-context.sh                  # 200 runs per payload (about a minute)
#   LINES=50 benches/instructions-context.sh
#   FLOWGATE_BIN=/path/to/other/flowgate benches/instructions-context.sh   # e.g. an older build
#
# Wall-clock timings of the pipeline move with the neighbours on a shared machine; instruction
# counts do not, so changes to src/context are decided by this. The release binary runs
# `inspect --jsonl` on LINES copies of each payload in benches/payloads/ under
# `valgrind --tool=callgrind --toggle-collect=flowgate::context::Pipeline::run`: only the
# pipeline is counted (not the line parsing or the output), and the total is divided by LINES.
# The `line` column counts the whole process instead, on LINES lines and on one line, and
# divides the difference by LINES - 1: the start-up cancels out, the line I/O stays in.
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=${LINES:-200}
# shellcheck source=benches/common.sh
. benches/common.sh
ensure_packages build callgrind
bin=${FLOWGATE_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin flowgate
  bin=${CARGO_TARGET_DIR:-target}/release/flowgate
fi

WORK=$(mktemp -d /tmp/flowgate-ctx-instr.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# whole_ir FILE: every instruction of `inspect --jsonl` on FILE.
whole_ir() {
  valgrind --tool=callgrind --callgrind-out-file="$WORK/whole.out" "$bin" inspect --jsonl <"$1" \
    2>&1 >/dev/null | awk '/Collected/ {print $4}'
}

printf '%-8s %14s %14s\n' payload "instr/run" "instr/line"
for name in a b c d; do
  # Base64 needs no escaping inside a JSON string.
  b64=$(tr -d '\n' <"benches/payloads/$name.b64")
  for ((i = 0; i < LINES; i++)); do
    printf '{"id":%d,"b64":"%s"}\n' "$i" "$b64"
  done >"$WORK/$name.jsonl"
  ir=$(valgrind --tool=callgrind --toggle-collect='flowgate::context::Pipeline::run' \
    --callgrind-out-file="$WORK/$name.out" "$bin" inspect --jsonl <"$WORK/$name.jsonl" \
    2>&1 >/dev/null | awk '/Collected/ {print $4}')
  if [ "${ir:-0}" -eq 0 ] && [ "$name" != d ]; then
    # An optimiser that inlines `Pipeline::run` into its caller leaves nothing to toggle on.
    echo "instructions-context: no instructions counted in Pipeline::run (inlined?)" >&2
    exit 1
  fi
  head -n 1 "$WORK/$name.jsonl" >"$WORK/$name-1.jsonl"
  line=$((($(whole_ir "$WORK/$name.jsonl") - $(whole_ir "$WORK/$name-1.jsonl")) / (LINES - 1)))
  printf '%-8s %14d %14d\n' "$name" $((ir / LINES)) "$line"
done
