#!/usr/bin/env bash
# GPU training-step throughput of slurmlab::nn against PyTorch (eager and torch.compile) in
# the same run, on the same GPU: tutorial CNN (3x32x32) and AlexNet (3x64x64), batch 256,
# Adam, in fp32 (TF32 off), tf32 and bf16 mixed precision. Rounds alternate the programs so
# that clocks and neighbours affect all alike; the table gives the median over rounds of each
# program's median step time, images/s and peak device memory.
#
# usage: bench/nn/run_gpu.sh [BUILD_DIR] [ROUNDS] [BATCH]   (from the repository root)
set -euo pipefail
build=${1:-build/ci}
rounds=${2:-3}
batch=${3:-256}
python=${SLURMLAB_TORCH_PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
ours="$build/bin/nn_gpu_train_step"
[ -x "$ours" ] || { echo "bench/nn/run_gpu.sh: $ours not built; run: cmake --build $build --target nn_gpu_train_step" >&2; exit 2; }
"$python" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null ||
  { echo "bench/nn/run_gpu.sh: $python has no CUDA-enabled torch (set SLURMLAB_TORCH_PYTHON)" >&2; exit 2; }

# The raw rows, one JSON line per run, go to SLURMLAB_BENCH_RESULTS where it is set (kept, so
# that a run cut short still has what it measured), else to a temporary file.
if [ -n "${SLURMLAB_BENCH_RESULTS:-}" ]; then
  results=$SLURMLAB_BENCH_RESULTS
  : >"$results"
else
  results=$(mktemp)
  trap 'rm -f "$results"' EXIT
fi
# slurmlab and torch eager first for every model and precision, torch.compile (which compiles
# for tens of seconds per process) after them.
for ((r = 0; r < rounds; r++)); do
  for model in cnn alexnet; do
    for variant in fp32 tf32 bf16; do
      "$ours" "$model" "$variant" "$batch" 50 >>"$results"
      "$python" "$here/torch_gpu_train_step.py" "$model" "$variant" eager "$batch" 50 >>"$results"
    done
  done
done
for ((r = 0; r < rounds; r++)); do
  for model in cnn alexnet; do
    for variant in fp32 tf32 bf16; do
      "$python" "$here/torch_gpu_train_step.py" "$model" "$variant" compile "$batch" 50 >>"$results" ||
        echo "torch.compile failed for $model $variant (skipped)" >&2
    done
  done
done

"$python" - "$results" "$rounds" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
labels = {"cnn": "tutorial CNN 3x32x32", "alexnet": "AlexNet 3x64x64"}
print(f"{sys.argv[2]} alternating rounds; step = forward + loss + backward + Adam step; device {rows[0]['device']}\n")
print("| model | precision | slurmlab img/s | torch eager img/s | torch.compile img/s | slurmlab peak MiB | eager peak MiB | compile peak MiB | eager time / slurmlab time |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for model in ["cnn", "alexnet"]:
    for variant in ["fp32", "tf32", "bf16"]:
        meds = {}
        for name, test in [("slurmlab", lambda f: f == "slurmlab"), ("eager", lambda f: f.endswith(" eager")),
                           ("compile", lambda f: f.endswith(" compile"))]:
            sel = [r for r in rows if r["model"] == model and r["variant"] == variant and test(r["framework"])]
            meds[name] = (statistics.median(r["median_ms"] for r in sel), max(r["peak_bytes"] for r in sel),
                          sel[0]["batch"]) if sel else None
        def ips(k): return f"{1000 * meds[k][2] / meds[k][0]:,.0f}" if meds[k] else "-"
        def mib(k): return f"{meds[k][1] / 2**20:,.0f}" if meds[k] else "-"
        ratio = f"{meds['eager'][0] / meds['slurmlab'][0]:.2f}x" if meds["eager"] and meds["slurmlab"] else "-"
        print(f"| {labels[model]} | {variant} | {ips('slurmlab')} | {ips('eager')} | {ips('compile')} | "
              f"{mib('slurmlab')} | {mib('eager')} | {mib('compile')} | {ratio} |")
PY
