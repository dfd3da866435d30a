#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) and prints one line per target:
# target, seconds, executions, crashes. Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable
# toolchain RUSTC_BOOTSTRAP=1 lets it use the sanitizer flags.
set -uo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
cargo fuzz build -O >/dev/null 2>&1 || { echo "fuzz build failed: run 'cargo fuzz build -O' in fuzz/ to see why" >&2; exit 1; }
printf '%-18s %8s %14s %8s\n' target seconds executions crashes
status=0
for t in $targets; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  [ -n "$execs" ] || execs=$(grep -oE '#[0-9]+' "$log" | tail -1 | tr -d '#')
  crashes=$(ls "artifacts/$t" 2>/dev/null | grep -c '^crash-' || true)
  printf '%-18s %8s %14s %8s\n' "$t" "$seconds" "${execs:-?}" "$crashes"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then status=1; tail -20 "$log" >&2; fi
  rm -f "$log"
done
exit $status
