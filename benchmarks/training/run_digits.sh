#!/usr/bin/env bash
# The issue-3 acceptance run: default training on the embedded digits, then eval of best.pt.
# Usage: benchmarks/training/run_digits.sh [OUT_DIR]   (writes OUT_DIR/{train.json,eval.json,time.txt} + the run folder)
set -euo pipefail
OUT=${1:-runs/bench-digits-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$(dirname "$OUT")"
/usr/bin/time -v -o "$OUT.time.txt" sqnxt-edge train --model 1.0-SqNxt-23 --data digits --output "$OUT" --json > "$OUT.train.json"
sqnxt-edge eval "$OUT/best.pt" --data digits --json > "$OUT.eval.json"
python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
t, e = json.load(open(out + ".train.json")), json.load(open(out + ".eval.json"))
wall = [l for l in open(out + ".time.txt") if "Elapsed (wall clock)" in l][0].split(": ", 1)[1].strip()
print(f"best test top-1 {t['best_top1']:.2f}% (epoch {t['best_epoch']}), eval {e['top1']:.2f}%, train wall {wall}")
PY
