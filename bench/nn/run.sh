#!/usr/bin/env bash
# Training-step time of slurmlab::nn against PyTorch (CPU) in the same run, same threads.
# Rounds alternate the two programs so that a busy machine slows both alike; the table gives
# the median over rounds of each program's median step time, and the ratio.
#
# usage: bench/nn/run.sh [BUILD_DIR] [THREADS] [ROUNDS]     (from the repository root)
#   defaults: build/ci, all cores (nproc), 3 rounds
set -euo pipefail
build=${1:-build/ci}
threads=${2:-$(nproc)}
rounds=${3:-3}
python=${SLURMLAB_TORCH_PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
ours="$build/bin/nn_train_step"
[ -x "$ours" ] || { echo "bench/nn/run.sh: $ours not built; run: cmake --build $build --target nn_train_step" >&2; exit 2; }
"$python" -c "import torch" 2>/dev/null || { echo "bench/nn/run.sh: $python has no torch; install python3-torch (env/debian.sh)" >&2; exit 2; }

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for model in mlp cnn alexnet; do
  case $model in mlp) repeats=300 ;; cnn) repeats=20 ;; alexnet) repeats=5 ;; esac
  for ((r = 0; r < rounds; r++)); do
    OPENBLAS_NUM_THREADS=$threads "$ours" "$model" "$repeats" >>"$results"
    OMP_NUM_THREADS=$threads "$python" "$here/torch_train_step.py" "$model" "$threads" "$repeats" >>"$results"
  done
done

"$python" - "$results" "$threads" "$rounds" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
threads, rounds = sys.argv[2], sys.argv[3]
labels = {"mlp": "MLP 1-64-1, 1400 rows, full batch, Adam",
          "cnn": "tutorial CNN, 64 x 3x32x32, Adam",
          "alexnet": "AlexNet (10 classes), 64 x 3x64x64, Adam"}
print(f"threads {threads}, {rounds} alternating rounds; step = forward + loss + backward + Adam step\n")
print("| model | slurmlab ms/step | PyTorch ms/step | slurmlab samples/s | PyTorch samples/s | PyTorch time / slurmlab time |")
print("|---|---:|---:|---:|---:|---:|")
for model in ["mlp", "cnn", "alexnet"]:
    ours = statistics.median(r["median_ms"] for r in rows if r["model"] == model and r["framework"] == "slurmlab")
    theirs = statistics.median(r["median_ms"] for r in rows if r["model"] == model and r["framework"] != "slurmlab")
    batch = next(r["batch"] for r in rows if r["model"] == model)
    print(f"| {labels[model]} | {ours:.3f} | {theirs:.3f} | {1000 * batch / ours:,.0f} | {1000 * batch / theirs:,.0f} | {theirs / ours:.1f}x |")
torch_version = next(r["framework"] for r in rows if r["framework"] != "slurmlab")
print(f"\npeer: {torch_version}")
PY
