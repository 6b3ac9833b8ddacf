#!/usr/bin/env bash
# The AlexNet practical end to end: train-classifier against PyTorch Lightning 2.x and a plain
# PyTorch loop, one training epoch at a reduced image count, same run, same machine. The set is
# CIFAR-10-sized (50000 random 3x32x32 records in the binary format, 45000/5000 split), Resize 70
# + RandomCrop 64 + flip + normalize, AlexNet (10 classes), batch 64, Adam 1e-4, 2 loader
# workers (threads for slurmlab, processes for PyTorch), at 1 and 2 compute threads. Rounds
# alternate the programs so that a busy machine slows all alike; the table gives medians over
# rounds of training images/s (epoch start to last batch end), seconds from process start to the
# end of the first training step, and the peak RSS of the largest process (GNU time).
#
# The peers need PyTorch 2.x, torchvision and Lightning 2.x in a virtual environment without
# Debian's torch (about 5 GB; benchmarks only, never CI):
#   python3 -m venv /work/venv-lightning && /work/venv-lightning/bin/pip install torch torchvision lightning
#
# usage: bench/classifier/run.sh [BUILD_DIR] [ROUNDS] [BATCHES] [DEVICE]   (from the repository root)
#   defaults: build/ci, 3 rounds, 20 batches (1280 images) per epoch, cpu
#   DEVICE cuda: one GPU for all three (train-classifier --device cuda, its training set resident
#     on the GPU; PyTorch with pinned batches), issue 13's GPU comparison: 8 loader workers
#     (SLURMLAB_BENCH_WORKERS), 4 host threads, and BATCHES large enough for a GPU (300)
#   SLURMLAB_LIGHTNING_PYTHON: the venv's python (default /work/venv-lightning/bin/python; on a
#     GPU machine with Lightning installed, python3)
#   SLURMLAB_BENCH_PRECISION: fp32 (default on the CPU), tf32 (default on a GPU: TF32 convolutions
#     and matrix products in all three, like for like; PyTorch's own default is TF32 convolutions
#     with fp32 matrix products) or bf16 (ours --precision bf16, the peers under autocast /
#     Lightning's "bf16-mixed")
set -euo pipefail
build=${1:-build/ci}
rounds=${2:-3}
batches=${3:-20}
device=${4:-cpu}
python=${SLURMLAB_LIGHTNING_PYTHON:-/work/venv-lightning/bin/python}
case $device in
  cpu) workers=2; thread_counts=(1 2); precision=${SLURMLAB_BENCH_PRECISION:-fp32} ;;
  cuda) workers=${SLURMLAB_BENCH_WORKERS:-8}; thread_counts=(4); precision=${SLURMLAB_BENCH_PRECISION:-tf32} ;;
  *) echo "bench/classifier/run.sh: DEVICE '$device' is not cpu or cuda" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
require_built bench/classifier/run.sh "$build"
"$python" -c "import lightning, torchvision" 2>/dev/null ||
  { echo "bench/classifier/run.sh: $python cannot import lightning and torchvision; create the venv as this script's header says, or set SLURMLAB_LIGHTNING_PYTHON" >&2; exit 2; }

# GNU time for the peak RSS (tools/gpu-bundle carries it to machines without it).
gnu_time=$(type -P time || true)
[ -n "$gnu_time" ] || { echo "bench/classifier/run.sh: GNU time is not installed (apt-get install time)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$writer" --write-cifar "$work/cifar"
# The raw rows (one JSON line per run) also stay in SLURMLAB_BENCH_RESULTS where it is set.
results=${SLURMLAB_BENCH_RESULTS:-$work/results.jsonl}
: >"$results"

# One slurmlab run: its console lines give the first step's time and the epoch's images/s.
run_ours() {
  local threads=$1 log="$work/ours.log" rss="$work/rss"
  rm -rf "$work/out"
  "$gnu_time" -f %M -o "$rss" env OPENBLAS_NUM_THREADS="$threads" "$ours" fit --data "cifar10:$work/cifar" \
    --val-size 5000 --model alexnet --resize 70 --crop 64 --flip \
    --normalize 0.4914,0.4822,0.4465/0.2470,0.2435,0.2616 --batch-size 64 --optimizer adam --lr 1e-4 \
    --epochs 1 --limit-train-batches "$batches" --limit-val-batches 1 --threads "$threads" \
    --loader-threads "$workers" --tensorboard false --grid-images 0 --test-after-fit false \
    --save-top-k 0 --device "$device" --precision "$precision" --output-dir "$work/out" >"$log" 2>&1 ||
    { cat "$log" >&2; exit 1; }
  # Its own account of where the time went (profile lines) on stderr, beside the table.
  sed -n '/^epoch /p; /^profile/,/^device wait/p' "$log" | sed 's/^/  slurmlab: /' >&2
  python3 - "$log" "$threads" "$workers" "$batches" "$(cat "$rss")" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
first = re.search(r"first training step done ([0-9.]+) s", text)
rate = re.search(r"epoch 1/1 .* ([0-9.]+) img/s", text)
if not first or not rate:
    sys.exit("bench/classifier/run.sh: train-classifier printed no timing lines:\n" + text)
print(json.dumps({"framework": "slurmlab", "mode": "slurmlab", "threads": int(sys.argv[2]), "workers": int(sys.argv[3]),
                  "batches": int(sys.argv[4]), "images_per_s": float(rate.group(1)),
                  "first_step_s": float(first.group(1)), "peak_rss_mib": int(sys.argv[5]) / 1024}))
PY
}

run_peer() {
  local mode=$1 threads=$2 rss="$work/rss"
  "$gnu_time" -f %M -o "$rss" env OMP_NUM_THREADS="$threads" "$python" "$here/torch_alexnet.py" "$mode" \
    "$work/cifar" "$threads" "$workers" "$batches" "$device" "$precision" >"$work/peer.json"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["peak_rss_mib"]=int(sys.argv[2])/1024; print(json.dumps(r))' \
    "$work/peer.json" "$(cat "$rss")"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs" >&2
for ((r = 0; r < rounds; r++)); do
  for threads in "${thread_counts[@]}"; do
    run_ours "$threads" >>"$results"
    run_peer lightning "$threads" >>"$results"
    run_peer plain "$threads" >>"$results"
  done
  echo "round $((r + 1))/$rounds done, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done

python3 - "$results" "$rounds" "$batches" "$device" "$workers" "$precision" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"AlexNet practical on {sys.argv[4]} in {sys.argv[6]}, one epoch of {sys.argv[3]} batches of 64 (Resize 70, "
      f"RandomCrop 64, flip, normalize; Adam 1e-4), {sys.argv[5]} loader workers; medians of {sys.argv[2]} rounds\n")
print("| threads | program | images/s | first step after start (s) | peak RSS (MiB) | slurmlab images/s ratio |")
print("|---:|---|---:|---:|---:|---:|")
for threads in sorted({r["threads"] for r in rows}):
    def median(mode, key):
        return statistics.median(r[key] for r in rows if r["threads"] == threads and r["mode"] == mode)
    ours = median("slurmlab", "images_per_s")
    for mode in ["slurmlab", "lightning", "plain"]:
        name = next(r["framework"] for r in rows if r["mode"] == mode)
        rate = median(mode, "images_per_s")
        print(f"| {threads} | {name}{' (plain loop)' if mode == 'plain' else ''} | {rate:.1f} | "
              f"{median(mode, 'first_step_s'):.2f} | {median(mode, 'peak_rss_mib'):.0f} | {ours / rate:.2f}x |")
PY
