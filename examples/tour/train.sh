#!/usr/bin/env bash
# examples/tour/train.sh: the classifier's real job template, jobs/train-classifier.sbatch,
# submitted with sbatch and followed with squeue, its per-rank files and (with accounting)
# sacct. On the local Slurm it uses the CPU fallback, a tiny config (about 40 s).
#   examples/tour/train.sh [--quiet|--markdown|--outline]
# Needs a cluster (tools/local-slurm up) and train-classifier (SLURMLAB_BIN, default
# build/default/bin, then build/ci/bin).
# shellcheck disable=SC2016 source-path=SCRIPTDIR # commands shown as typed, $variables and all
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tour_init "$@"

if [ "$tour_mode" != outline ]; then
  for candidate in "${SLURMLAB_BIN:-}" "$tour_repo/build/default/bin" "$tour_repo/build/ci/bin"; do
    if [ -n "$candidate" ] && [ -x "$candidate/train-classifier" ]; then
      SLURMLAB_BIN="$candidate"
      break
    fi
  done
  [ -x "${SLURMLAB_BIN:-}/train-classifier" ] ||
    tour_die "no train-classifier found (looked in \$SLURMLAB_BIN, build/default/bin, build/ci/bin): build it first (cmake --build --preset default --target train-classifier) or set SLURMLAB_BIN."
  export SLURMLAB_BIN SLURMLAB_OUTPUT="$PWD/results"
fi

title "Tour: a real training job (jobs/train-classifier.sbatch)"
explain "The classifier's template: one node, one task per GPU, checkpoints and requeue." \
  "SLURMLAB_BIN says where the program is, SLURMLAB_OUTPUT where results go (sbatch passes" \
  "the environment on to the job)."

section "Submit and watch"
show 'job=$(sbatch --parsable "$tour_repo"/jobs/train-classifier.sbatch); echo $job'
hidden 'track $job'
hidden 'wait_for 30 "[ \"\$(job_state $job)\" = RUNNING ]"'
show 'squeue -j $job -o "%.8i %.18j %.8T %.10M %.6D %R"'
show 'scontrol show job $job | grep -E "NumNodes|TresPerTask|StdOut"'
hidden 'wait_for 300 "job_ended $job"'
show 'scontrol show job $job | grep -oE "(JobState|ExitCode)=[^ ]*" | paste -sd " "'
explain "A batch job's output goes to its --output file as it runs (tail -f it); each" \
  "rank also writes its own rank-JOB-N.out in the results folder."
show 'tail -n 4 train-classifier-$job.out'
show 'ls results/train-classifier-$job | sort'
explain "metrics.h5, checkpoints/ (last and best), tensorboard/ (jobs/tensorboard.sbatch" \
  "shows them) and one log per rank."
tour_end
