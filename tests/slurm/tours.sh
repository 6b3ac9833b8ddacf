#!/usr/bin/env bash
# tests/slurm/tours.sh STEP: the tours of examples/tour/ on their own local Slurm (with
# accounting) under the build tree, port base 27817. CTest runs `up` as a fixture, then each
# tour, then `down`; each tour step runs the script with --quiet and asserts its key lines.
#   tests/slurm/tours.sh up|down|queue|inspect|interactive|batch|accounting|train|markdown BUILD_DIR
set -euo pipefail
step="$1"
build="$2"
source_dir="$(cd "$(dirname "$0")/../.." && pwd -P)"
cluster_dir="$build/tour-test/cluster"
port="${SLURMLAB_TOUR_TEST_PORT:-27817}"
export SLURMLAB_SLURM_DIR="$cluster_dir" SLURM_CONF="$cluster_dir/slurm.conf"
export TOUR_WORKDIR="$build/tour-test/work" SLURMLAB_BIN="$build/bin"
failures=0
out=""

# expect REGEX WHAT: a line of the tour's output matches the extended regex.
expect() {
  if grep -qE -- "$1" <<<"$out"; then
    echo "ok: $2"
  else
    echo "FAILED: $2 (no line matches /$1/)"
    failures=$((failures + 1))
  fi
}

run_tour() {
  local status=0
  out="$("$source_dir/examples/tour/$1.sh" --quiet 2>&1)" || status=$?
  printf '%s\n' "$out"
  echo "---- assertions"
  [ "$status" -eq 0 ] || { echo "FAILED: examples/tour/$1.sh exited with status $status"; failures=$((failures + 1)); }
}

if [ "$(id -u)" -ne 0 ] && [ "$step" != markdown ]; then
  echo "skipped: the local Slurm needs root"
  exit 77
fi

case "$step" in
up) exec "$source_dir/tools/local-slurm" --dir "$cluster_dir" --port-base "$port" --share "$build" up --accounting --timeout 120 ;;
down) exec "$source_dir/tools/local-slurm" --dir "$cluster_dir" down ;;
queue)
  run_tour queue
  expect '^ +[0-9]+ +[a-z]+ +tour-wai +[a-z0-9]+ +PD +20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8} +1 ' "squeue --start gives the pending job a START_TIME"
  expect 'PENDING .*\(Resources\)$' "the pending job's reason is Resources"
  expect 'tour-blocker +RUNNING .* node\[1-4\]$' "the blocker runs on every node"
  expect '^0$' "nothing left in the queue afterwards"
  ;;
inspect)
  run_tour inspect
  expect '^   NodeList=node\[1-2\]$' "scontrol show job gives the allocation's node list"
  expect '^   TresPerTask=gres:gpu:1$' "the GPU request is visible"
  expect '^node2$' "scontrol show hostnames expands node[1-2]"
  expect '^node\[1-3\]$' "scontrol show hostlist compresses"
  expect 'tour-held +PENDING .*\(JobHeldUser\)$' "a held job pends with reason JobHeldUser"
  expect '^ +RunTime=.* TimeLimit=00:01:00 ' "scontrol update changed the pending job's time limit"
  expect 'JobState=COMPLETED' "the released job ran"
  ;;
interactive)
  run_tour interactive
  expect '^salloc: Granted job allocation [0-9]+$' "salloc granted an allocation in the terminal"
  expect '^job [0-9]+ on node\[1-2\]: 4 tasks, 2 per node$' "the salloc shell sees its allocation"
  expect '^3: node2 local rank 1 CUDA_VISIBLE_DEVICES=1$' "srun inside the allocation binds one GPU per task"
  expect 'ntasks-per-node SLURM_NTASKS_PER_NODE=2' "env-dump reports what was allocated"
  expect '^salloc: Relinquishing job allocation [0-9]+$' "exit gives the allocation back"
  expect '^on node[0-9] in job [0-9]+, step 0, terminal /dev/pts/[0-9]+$' "srun --pty gives a shell with a terminal on a node"
  ;;
batch)
  run_tour batch
  expect '^sbatch: Job [0-9]+ to start at .* on nodes node\[[0-9]-[0-9]\]' "sbatch --test-only answers"
  expect '^rank-[0-9]+-3\.out$' "one output file per rank (%j-%t)"
  expect '^rank 3 of 4 on node2, local rank 1$' "ranks fill nodes in blocks"
  expect 'SLURM_NTASKS_PER_NODE=2$' "SLURM_NTASKS_PER_NODE set with --ntasks-per-node"
  expect 'SLURM_NTASKS_PER_NODE=unset$' "and unset with --ntasks only"
  expect '^tour-array-[0-9]+_4\.out$' "array output files named %A_%a"
  expect '^array task 4 of job [0-9]+$' "array task ids"
  expect 'tour-then-ok +PENDING \(Dependency\)$' "afterok holds a job while the first one runs"
  expect 'DependencyNeverSatisfied' "afterok on a failed job can never start"
  expect 'JobName=tour-anyway JobState=COMPLETED' "afterany runs after a failure"
  expect 'JobName=tour-cancel-c JobState=CANCELLED' "scancel by state and name"
  # The dependent job started no earlier than the first one ended.
  first_end="$(sed -n 's/^JobName=tour-first .*EndTime=\([^ ]*\).*/\1/p' <<<"$out")"
  then_start="$(sed -n 's/^JobName=tour-then-ok .*StartTime=\([^ ]*\).*/\1/p' <<<"$out")"
  if [ -n "$first_end" ] && [ -n "$then_start" ] && [[ ! "$then_start" < "$first_end" ]]; then
    echo "ok: the dependent job started ($then_start) after the first ended ($first_end)"
  else
    echo "FAILED: dependency order (first ended '$first_end', dependent started '$then_start')"
    failures=$((failures + 1))
  fi
  ;;
accounting)
  run_tour accounting
  expect '^[0-9]+ +tour-acct +[0-9:]{8} +COMPLETED +0:0 ' "sacct: the job COMPLETED with ExitCode 0:0"
  expect '^[0-9]+\.0 +python3 +[0-9:]{8} +COMPLETED +0:0 +[0-9]{5,}K ' "sacct: step 0 with its MaxRSS (60 MB held)"
  expect '^[0-9]+\.1 +bash +[0-9:]{8} +FAILED +3:0 ' "sacct: step 1 FAILED with ExitCode 3:0"
  expect '^Cluster Utilization ' "sreport answers"
  expect '^Memory utilized: [0-9.]+ MiB \(step [0-9]+\.0, MaxRSS\)$' "tools/seff finds the peak memory step"
  ;;
train)
  run_tour train
  expect 'train-classifier +RUNNING .* node[0-9]$' "the template's job runs on one node"
  expect '^JobState=COMPLETED ExitCode=0:0$' "and completes"
  expect 'test of .*checkpoints/.*accuracy 0\.[0-9]+$' "the best checkpoint was tested"
  expect '^rank-[0-9]+-1\.out$' "each rank wrote its own output file"
  ;;
markdown)
  "$source_dir/examples/tour/markdown" --check || failures=$((failures + 1))
  # The check must notice a stale walkthrough: change one prose line in a copy.
  tmp="$(mktemp -d)"
  cp -r "$source_dir/examples/tour" "$tmp/tour"
  cp "$source_dir"/examples/tour-*.md "$tmp/"
  sed -i '0,/^## /s/^## \(.*\)/## \1 (edited)/' "$tmp/tour-queue.md"
  stale_status=0
  stale="$("$tmp/tour/markdown" --check queue 2>&1 >/dev/null)" || stale_status=$?
  if [ "$stale_status" -ne 1 ] || ! grep -q "is stale" <<<"$stale"; then
    echo "FAILED: --check did not say the edited walkthrough is stale (status $stale_status: $stale)"
    failures=$((failures + 1))
  else
    echo "ok: --check notices a stale walkthrough"
  fi
  rm -rf "$tmp"
  ;;
*)
  echo "tests/slurm/tours.sh: unknown step '$step'" >&2
  exit 2
  ;;
esac
[ "$failures" -eq 0 ] || { echo "$failures assertion(s) failed"; exit 1; }
echo "all assertions passed"
