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
# bf16 rows (Conv2d and Linear products in bf16, fp32 elsewhere; the peer under
# torch.autocast("cpu", dtype=torch.bfloat16)) where this CPU runs bf16 natively.
models="mlp cnn alexnet"
if OPENBLAS_NUM_THREADS=1 "$ours" mlp 1 bf16 >/dev/null 2>&1; then
  models="$models cnn:bf16 alexnet:bf16"
else
  echo "bench/nn/run.sh: no bf16 rows: $("$ours" mlp 1 bf16 2>&1 >/dev/null)" >&2
fi
for entry in $models; do
  model=${entry%%:*}
  precision=fp32
  [[ $entry == *:bf16 ]] && precision=bf16
  case $model in mlp) repeats=300 ;; cnn) repeats=20 ;; alexnet) repeats=5 ;; esac
  extra=()
  [ "$precision" = bf16 ] && extra=(bf16)
  for ((r = 0; r < rounds; r++)); do
    OPENBLAS_NUM_THREADS=$threads "$ours" "$model" "$repeats" "${extra[@]}" >>"$results"
    OMP_NUM_THREADS=$threads "$python" "$here/torch_train_step.py" "$model" "$threads" "$repeats" "$precision" >>"$results"
  done
done

"$python" - "$results" "$threads" "$rounds" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
threads, rounds = sys.argv[2], sys.argv[3]
labels = {"mlp": "MLP 1-64-1, 1400 rows, full batch, Adam",
          "cnn": "tutorial CNN, 64 x 3x32x32, Adam",
          "alexnet": "AlexNet (10 classes), 64 x 3x64x64, Adam"}
for row in rows:
    row.setdefault("precision", "fp32")
print(f"threads {threads}, {rounds} alternating rounds; step = forward + loss + backward + Adam step\n")
print("| model | slurmlab ms/step | PyTorch ms/step | slurmlab samples/s | PyTorch samples/s | PyTorch time / slurmlab time |")
print("|---|---:|---:|---:|---:|---:|")
for model, precision in [("mlp", "fp32"), ("cnn", "fp32"), ("alexnet", "fp32"), ("cnn", "bf16"), ("alexnet", "bf16")]:
    same = [r for r in rows if r["model"] == model and r["precision"] == precision]
    if not same:
        continue
    ours = statistics.median(r["median_ms"] for r in same if r["framework"] == "slurmlab")
    theirs = statistics.median(r["median_ms"] for r in same if r["framework"] != "slurmlab")
    batch = same[0]["batch"]
    label = labels[model] + (", bf16 products (peer: autocast)" if precision == "bf16" else "")
    print(f"| {label} | {ours:.3f} | {theirs:.3f} | {1000 * batch / ours:,.0f} | {1000 * batch / theirs:,.0f} | {theirs / ours:.1f}x |")
torch_version = next(r["framework"] for r in rows if r["framework"] != "slurmlab")
print(f"\npeer: {torch_version}")
PY
