#!/usr/bin/env bash
# fit-regression epochs per second vs PyTorch (CPU), same data, same run. Rounds alternate the
# programs so that a busy machine slows all alike; the table gives the median over rounds.
#
# usage: bench/fit/run.sh [BUILD_DIR] [ROUNDS] [EPOCHS]     (from the repository root)
#   defaults: build/ci, 3 rounds, 2000 epochs (5 repeats each)
set -euo pipefail
build=${1:-build/ci}
rounds=${2:-3}
epochs=${3:-2000}
python=${SLURMLAB_TORCH_PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
ours="$build/bin/fit_epochs"
[ -x "$ours" ] || { echo "bench/fit/run.sh: $ours not built; run: cmake --build $build --target fit_epochs" >&2; exit 2; }
"$python" -c "import torch" 2>/dev/null || { echo "bench/fit/run.sh: $python has no torch; install python3-torch (env/debian.sh)" >&2; exit 2; }

results=$(mktemp)
split=$(mktemp)
trap 'rm -f "$results" "$split"' EXIT
for ((r = 0; r < rounds; r++)); do
  # fit-regression's default (--threads: SLURM_CPUS_PER_TASK, else 1) and two threads.
  "$ours" --epochs "$epochs" --repeats 5 --threads 1 --dump "$split" >>"$results"
  "$ours" --epochs "$epochs" --repeats 5 --threads 2 >>"$results"
  for threads in 1 2; do
    OMP_NUM_THREADS=$threads "$python" "$here/torch_fit_epochs.py" "$split" "$threads" "$epochs" 5 16 >>"$results"
  done
done

"$python" - "$results" "$rounds" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def key(r):
    return r["framework"] + (f" ({r['threads']} thread{'s' if r['threads'] > 1 else ''})" if "threads" in r else " (1 thread)")
rates = {}
for r in rows:
    rates.setdefault(key(r), []).append(r["epochs_per_s"])
first = rows[0]
print(f"default model 1 -> {first['hidden']} tanh -> 1, {first['train_rows']} training rows full batch + "
      f"{first['val_rows']} validation rows, Adam; epoch = step + validation loss; {sys.argv[2]} rounds"
      + (" (SYNTHETIC table)" if first.get("synthetic") else "") + "\n")
fused = statistics.median(rates["slurmlab fused (1 thread)"])
print("| implementation | epochs/s (median over rounds) | slurmlab fused speed-up |")
print("|---|---:|---:|")
for name, values in rates.items():
    m = statistics.median(values)
    print(f"| {name} | {m:,.0f} | {fused / m:.1f}x |")
PY
