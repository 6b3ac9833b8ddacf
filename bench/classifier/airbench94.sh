#!/usr/bin/env bash
# airbench94's recipe: `train-classifier fit --preset airbench94` against airbench94 restated in
# PyTorch (torch_airbench94.py: same network, optimizer groups, loss, schedule, flip and
# translation), training images/s over the first BATCHES batches of 1024 of a CIFAR-10-sized
# set (50000 random records in the binary format, 45000/5000 split for ours), same run, same
# machine, rounds alternating the programs. On the CPU at 1 and 2 threads; with DEVICE cuda on
# one GPU, where the peer runs as airbench does (fp16, channels_last) and also under
# torch.compile, and ours in bf16. The peer times its batches after one untimed warm-up step
# (compilation, cuDNN's algorithm search); ours likewise reports the second of two epochs of
# BATCHES batches. Its first pays one-time costs: on the GPU cuDNN's search, the allocator's
# growth and the lazy loading of kernels (on the H200 a one-epoch run of 40 batches averaged
# 35k images/s, while a whole fit of the recipe ran its first epoch at 60k and the others at
# 79k); on the CPU oneDNN's primitive creation and the first touch of the activations' memory
# (at batch 1024 in bf16 the first step took 6.3 s against 3.7 s for the next ones; with
# 2 batches that was a third of the time measured, so one-epoch figures before 2026-12-04 22:50
# undercount ours).
#
# usage: bench/classifier/airbench94.sh [BUILD_DIR] [ROUNDS] [BATCHES] [DEVICE]   (from the repository root)
#   defaults: build/ci, 3 rounds, 2 batches, cpu
#   SLURMLAB_TORCH_PYTHON: the peer's python (default /usr/bin/python3, Debian's torch)
#   SLURMLAB_BENCH_PRECISION (CPU): fp32 (default) or bf16 (ours --precision bf16, the peer under
#     torch.autocast("cpu", dtype=torch.bfloat16))
set -euo pipefail
build=${1:-build/ci}
rounds=${2:-3}
batches=${3:-2}
device=${4:-cpu}
python=${SLURMLAB_TORCH_PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
require_built bench/classifier/airbench94.sh "$build"
"$python" -c "import torch" 2>/dev/null || { echo "bench/classifier/airbench94.sh: $python has no torch; install python3-torch (env/debian.sh) or set SLURMLAB_TORCH_PYTHON" >&2; exit 2; }
case $device in
  cpu) thread_counts=(1 2); precision=${SLURMLAB_BENCH_PRECISION:-fp32}; epochs=2 ;;
  cuda) thread_counts=("$(nproc)"); precision=bf16; epochs=2 ;;
  *) echo "bench/classifier/airbench94.sh: DEVICE must be cpu or cuda, not '$device'" >&2; exit 2 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$writer" --write-cifar "$work/cifar"
# The raw rows (one JSON line per run) also stay in SLURMLAB_BENCH_RESULTS where it is set.
results=${SLURMLAB_BENCH_RESULTS:-$work/results.jsonl}
: >"$results"

run_ours() {
  local threads=$1 log="$work/ours.log"
  rm -rf "$work/out"
  env OPENBLAS_NUM_THREADS="$threads" "$ours" fit --preset airbench94 --data "cifar10:$work/cifar" --val-size 5000 \
    --normalize 0.4914,0.4822,0.4465/0.2470,0.2435,0.2616 --epochs "$epochs" --limit-train-batches "$batches" \
    --limit-val-batches 1 --threads "$threads" --loader-threads 2 --device "$device" --precision "$precision" \
    --tensorboard false --grid-images 0 --test-after-fit false --save-top-k 0 --output-dir "$work/out" >"$log" 2>&1 ||
    { cat "$log" >&2; exit 1; }
  # Its own account of where the time went (profile lines) on stderr, beside the table.
  sed -n '/^epoch /p; /^profile/,/^device wait/p' "$log" | sed 's/^/  slurmlab: /' >&2
  "$python" - "$log" "$threads" "$batches" "$epochs" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
rate = re.search(rf"epoch {sys.argv[4]}/{sys.argv[4]} .* ([0-9.]+) img/s", text)
if not rate:
    sys.exit("bench/classifier/airbench94.sh: train-classifier printed no img/s line:\n" + text)
print(json.dumps({"framework": "slurmlab", "mode": "slurmlab", "threads": int(sys.argv[2]), "batches": int(sys.argv[3]),
                  "images_per_s": float(rate.group(1))}))
PY
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs, device $device" >&2
for ((r = 0; r < rounds; r++)); do
  for threads in "${thread_counts[@]}"; do
    run_ours "$threads" >>"$results"
    peer_flags=()
    [ "$device" = cpu ] && [ "$precision" = bf16 ] && peer_flags=(--bf16)
    OMP_NUM_THREADS=$threads "$python" "$here/torch_airbench94.py" "$work/cifar" "$threads" "$batches" --device "$device" \
      "${peer_flags[@]}" >>"$results"
    if [ "$device" = cuda ]; then
      "$python" "$here/torch_airbench94.py" "$work/cifar" "$threads" "$batches" --device cuda --compile >>"$results"
    fi
  done
  echo "round $((r + 1))/$rounds done, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done

"$python" - "$results" "$rounds" "$batches" "$device" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"airbench94 recipe, training images/s over {sys.argv[3]} batch(es) of 1024, device {sys.argv[4]}; "
      f"medians of {sys.argv[2]} rounds\n")
print("| threads | program | images/s | slurmlab / this |")
print("|---:|---|---:|---:|")
for threads in sorted({r["threads"] for r in rows}):
    def median(mode):
        return statistics.median(r["images_per_s"] for r in rows if r["threads"] == threads and r["mode"] == mode)
    ours = median("slurmlab")
    for mode in ["slurmlab", "torch", "torch-compile"]:
        if not any(r["mode"] == mode for r in rows):
            continue
        name = next(r["framework"] for r in rows if r["mode"] == mode)
        print(f"| {threads} | {name}{' + torch.compile' if mode == 'torch-compile' else ''} | {median(mode):.1f} | "
              f"{ours / median(mode):.2f}x |")
PY
