#!/usr/bin/env bash
# tests/slurm/cpu_vs_gpu.sh BUILD_DIR: the CPU-vs-GPU timing lab end to end on its own local
# Slurm (2 nodes of 2 CPUs and 1 fake GPU each, port base 30817, under BUILD_DIR/cpu-vs-gpu-test):
# tools/cpu-vs-gpu with its default core counts (1 and 2 run, 4, 8 and 16 are skipped with a
# sentence), --extra-layers and 2 tiny epochs; the GPU run finds no working GPU; the gather job
# must start after every run ended and write the table (rows for 1 and 2 cores of every
# model), the figure, and say the GPU is absent. Exit 77: skipped (not root).
set -euo pipefail
build="$(cd "$1" && pwd -P)"
source_dir="$(cd "$(dirname "$0")/../.." && pwd -P)"
base="$build/cpu-vs-gpu-test"
port="${SLURMLAB_CPU_VS_GPU_TEST_PORT:-30817}"
cluster=("$source_dir/tools/local-slurm" --dir "$base/cluster")

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the local Slurm needs root (mknod, mount namespaces, slurmd)"
  exit 77
fi

source "$source_dir/tests/support/checks.sh"

trap '"${cluster[@]}" down >/dev/null 2>&1 || true' EXIT
"${cluster[@]}" --port-base "$port" --share "$build" --nodes 2 --cpus-per-node 2 --gpus-per-node 1 up --timeout 120
eval "$("${cluster[@]}" env)"
rm -rf "$base/work"
mkdir -p "$base/work"
cd "$base/work"

# Tiny runs: 384 synthetic images (6 batches), 64 validation, no test pass, 2 epochs.
export SLURMLAB_BIN="$build/bin" SLURMLAB_OUTPUT="$base/work/results"
export CVG_SYNTHETIC_COUNT=448 CVG_SYNTHETIC_TEST_COUNT=64 CVG_EXTRA="--val-size 64 --grid-images 0 --test-after-fit false"
start=$SECONDS
# --dry-run: the sbatch commands, nothing submitted, nothing written.
dry="$("$source_dir/tools/cpu-vs-gpu" --cores 1,2,4 --models mlp --dry-run 2>&1)" || { echo "$dry"; echo "FAILED: --dry-run"; exit 1; }
echo "$dry"
grep -qE -- "--array=0-0 --cpus-per-task=2 .*jobs/cpu-vs-gpu.sbatch$" <<<"$dry" &&
  grep -qE -- "--dependency=afterany:DRY1:DRY2:DRY3 .*jobs/cpu-vs-gpu.sbatch gather$" <<<"$dry" &&
  grep -qF "4 cores skipped" <<<"$dry" && [ -z "$(squeue -h)" ] && [ ! -e "$SLURMLAB_OUTPUT" ] ||
  { echo "FAILED: --dry-run did not print the plan, or submitted or wrote something"; exit 1; }
echo "ok: --dry-run prints the sbatch commands and submits nothing"
submitted="$("$source_dir/tools/cpu-vs-gpu" --extra-layers --epochs 2 2>&1)" || { echo "$submitted"; echo "FAILED: tools/cpu-vs-gpu"; exit 1; }
echo "$submitted"
echo "---- assertions on the submission"
set +e  # from here on every check counts, none ends the test
check "4 cores are skipped in one sentence" has_text "$submitted" "4 cores skipped: no node of this cluster has 4 CPUs (the largest has 2)."
check "so are 16" has_text "$submitted" "16 cores skipped"
check "no --data is said loudly" has_text "$submitted" "SYNTHETIC MNIST-shaped images"
lab="$(ls -d "$SLURMLAB_OUTPUT"/cpu-vs-gpu-* | head -n 1)"
gather="$(cat "$lab/gather.jobid")"
name="$(basename "$lab")"
# While it pends (the runs take longer than this query), the dependency is on record; once met,
# Slurm clears it, so it is read now.
check "the gather job carries its afterany dependency on the runs" has_text "$(scontrol show job -o "$gather")" "Dependency=afterany:"

"${cluster[@]}" wait "$gather" --timeout 240 || true
echo "lab finished after $((SECONDS - start)) s"
echo "---- $lab/logs/gather.out"
cat "$lab/logs/gather.out" || true
echo "---- plan.tsv"
cat "$lab/plan.tsv"
echo "---- assertions on the lab"
state="$(scontrol show job -o "$gather")"
check "the gather job completed" has_text "$state" "JobState=COMPLETED"
# Every job of the lab (the arrays' tasks) ended before the gather job started.
gather_start="$(grep -oE 'StartTime=[^ ]+' <<<"$state" | cut -d= -f2)"
late=0
runs=0
while read -r line; do
  [[ "$line" == *"JobId=$gather "* ]] && continue
  runs=$((runs + 1))
  end="$(grep -oE 'EndTime=[^ ]+' <<<"$line" | cut -d= -f2)"
  if [[ "$end" > "$gather_start" ]]; then late=$((late + 1)); echo "ended after the gather started: $line"; fi
done < <(scontrol show job -o | grep "JobName=$name ")
check "the lab's 9 runs (3 models x 1 and 2 cores, and the GPU) are known to Slurm ($runs)" test "$runs" -ge 9
check "the gather job started after every run had ended" test "$late" -eq 0

report="$(cat "$lab/report.txt" 2>/dev/null || true)"
echo "---- report.txt"
echo "$report"
for model in mlp tutorial-cnn mlp-extra; do
  for n in 1 2; do
    check "the table has a row for $model on $n core(s)" has "$report" "^$model +$n +cpu +2 of 2 "
  done
done
check "the report says the GPU is absent" has_text "$report" "GPU: absent (mlp on one GPU (job "
check "and why" has_text "$report" "found no working GPU: nvidia-smi lists no GPU"
check "the speed-up of 2 cores is said in words" has_text "$report" "mlp: 2 cores give"
# Which one depends on the machine's load (2 cores may be slower than 1 here); both are the fit in words.
check "the Amdahl fit is said in words (2 points check nothing, or no serial fraction fits)" \
  has "$report" "exact with 2 core counts, so it checks nothing|Amdahl's law cannot describe these times"
check "the extra-layers question is answered" has_text "$report" "Extra layers: mlp-extra (two more Dense(128) + ReLU layers) takes"
check "skipped runs are in the report, one sentence per core count" has_text "$report" "mlp, tutorial-cnn and mlp-extra on 8 cores were not run: no node of this cluster has 8 CPUs (the largest has 2)"
check "the GPU runs' absence is said once" has_text "$report" "2 more GPU runs likewise"
check "the report says the data are synthetic" has_text "$report" "SYNTHETIC DATA"
check "the figure cpu-vs-gpu.png is a PNG" test "$(head -c 4 "$lab/cpu-vs-gpu.png" 2>/dev/null | od -An -c | tr -d ' ')" = '211PNG'
check "report.csv has the 6 CPU rows" test "$(grep -c ',cpu,' "$lab/report.csv" 2>/dev/null)" -eq 6

"${cluster[@]}" down >/dev/null
cluster_is_down() { "${cluster[@]}" status >/dev/null 2>&1; [ $? -eq 3 ]; }  # status: exit 3 when down
check "this test's cluster is down afterwards" cluster_is_down
trap - EXIT
echo "cpu_vs_gpu: $failures failure(s) in $((SECONDS - start)) s"
finish
