#!/usr/bin/env bash
# Runs stormwatch's miner and Drain3 (0.9.11, masking on) on the same lines in the same run and
# prints both speeds and the ratio. Usage: benches/drain3_compare.sh [LOGHUB_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
loghub=${1:-../shared/data/loghub}
python3 -c 'import drain3' 2>/dev/null || python3 -m pip install --quiet drain3==0.9.11
corpus=$(mktemp)
trap 'rm -f "$corpus"' EXIT
args=(bench templates --write-corpus "$corpus" --json)
[ -d "$loghub" ] && args+=(--loghub "$loghub")
ours=$(cargo run --quiet --release -- "${args[@]}" 2>/dev/null)
theirs=$(python3 benches/drain3_bench.py "$corpus")
python3 - "$ours" "$theirs" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
m, p, d = ours["miner_lines_per_s"], ours["parse_template_lines_per_s"], theirs["lines_per_s"]
print(f"corpus: {ours['corpus_lines']} lines ({ours['demo_lines']} demo, {ours['loghub_lines']} loghub)")
print(f"stormwatch miner alone:      {m:12.0f} lines/s  ({m / d:.0f}x Drain3)")
print(f"stormwatch parse + template: {p:12.0f} lines/s  ({p / d:.0f}x Drain3)")
print(f"Drain3 0.9.11, masking on:   {d:12.0f} lines/s  ({theirs['lines']} lines, {theirs['clusters']} clusters)")
PY
