#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600), two at a time on a 2-core machine.
#   scripts/fuzz.sh        the long run (10 minutes a target) before a release
#   scripts/fuzz.sh 30     the smoke run CI does
# Seeds live in fuzz/corpus/<target> (committed); what a run discovers goes to fuzz/runs/<target>
# (ignored). A crash leaves its input in fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=(tracker utf8 close handshake proxy_header response_head)
# -s none: no sanitizer, which works on the stable toolchain; the targets assert their own invariants.
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none -O
run() {
  mkdir -p "fuzz/runs/$1"
  cargo fuzz run -s none -O "$1" "fuzz/runs/$1" "fuzz/corpus/$1" -- \
    -max_total_time="$seconds" -max_len=70000 -print_final_stats=1 > "fuzz/runs/$1.log" 2>&1
  echo "$1: $(grep -E '^stat::number_of_executed_units' "fuzz/runs/$1.log" | awk '{print $2}') execs, no crash"
}
status=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  pids=()
  for t in "${targets[@]:i:2}"; do run "$t" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
done
if [ "$status" -ne 0 ]; then
  echo "a fuzz target failed: see fuzz/runs/*.log and fuzz/artifacts/"
  tail -30 fuzz/runs/*.log
fi
exit "$status"
