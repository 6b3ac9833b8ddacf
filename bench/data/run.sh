#!/usr/bin/env bash
# Data loading images/s: slurmlab's BatchLoader vs PyTorch's DataLoader + torchvision, same
# CIFAR-10-sized data (50000 random 3x32x32 records in the CIFAR binary format), the AlexNet
# practical's training transforms (70x70 resize, random 64x64 crop, flip, normalize), batch
# 256, at 1 and 2 workers. Rounds alternate the programs so that a busy machine slows all
# alike; the table gives the median over rounds of each round's median over repeats.
#
# usage: bench/data/run.sh [BUILD_DIR] [ROUNDS] [BATCHES] [REPEATS]     (from the repository root)
#   defaults: build/ci, 3 rounds, 20 timed batches, 3 repeats
set -euo pipefail
build=${1:-build/ci}
rounds=${2:-3}
batches=${3:-20}
repeats=${4:-3}
python=${SLURMLAB_TORCH_PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
ours="$build/bin/loader_bench"
[ -x "$ours" ] || { echo "bench/data/run.sh: $ours not built; run: cmake --build $build --target loader_bench" >&2; exit 2; }
"$python" -c "import torchvision" 2>/dev/null || { echo "bench/data/run.sh: $python has no torchvision; install python3-torchvision (env/debian.sh)" >&2; exit 2; }

data=$(mktemp -d)
results=$(mktemp)
trap 'rm -rf "$data" "$results"' EXIT
"$ours" --write-cifar "$data"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs" >&2
for ((r = 0; r < rounds; r++)); do
  for workers in 1 2; do
    "$ours" "$data" "$workers" "$batches" "$repeats" >>"$results"
    "$python" "$here/torch_loader.py" "$data" "$workers" "$batches" "$repeats" >>"$results"
  done
  echo "round $((r + 1))/$rounds done, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done

"$python" - "$results" "$rounds" "$batches" "$repeats" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
rates = {}
for r in rows:
    name = r["framework"] + (f" ({r['mode']})" if "mode" in r else "")
    rates.setdefault((r["workers"], name), []).append(r["images_per_s"])
print(f"CIFAR-10-sized set (50000 x 3x32x32, in memory), resize 70x70 + random crop 64x64 + flip + normalize, "
      f"batch 256; {sys.argv[2]} rounds x {sys.argv[4]} repeats of {sys.argv[3]} batches\n")
print("| workers | implementation | images/s (median) | slurmlab speed-up |")
print("|---:|---|---:|---:|")
for workers in sorted({w for w, _ in rates}):
    ours = statistics.median(rates[(workers, "slurmlab")])
    for (w, name), values in rates.items():
        if w == workers:
            m = statistics.median(values)
            print(f"| {workers} | {name} | {m:,.0f} | {ours / m:.1f}x |")
PY
