#!/usr/bin/env bash
# examples/tour/interactive.sh: salloc, then srun inside the allocation; env-dump
# showing what was allocated; srun --pty for a shell on a compute node. The steps
# are typed into a real terminal (a tmux pane), exactly as you would type them.
#   examples/tour/interactive.sh [--quiet|--markdown|--outline]
# Needs a cluster (tools/local-slurm up) and tmux; env-dump from SLURMLAB_BIN (default
# build/default/bin, then build/ci/bin).
# shellcheck disable=SC2016 source-path=SCRIPTDIR # commands shown as typed, $variables and all
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tour_init "$@"

if [ "$tour_mode" != outline ]; then
  for candidate in "${SLURMLAB_BIN:-}" "$tour_repo/build/default/bin" "$tour_repo/build/ci/bin"; do
    if [ -n "$candidate" ] && [ -x "$candidate/env-dump" ]; then
      SLURMLAB_BIN="$candidate"
      break
    fi
  done
  [ -x "${SLURMLAB_BIN:-}/env-dump" ] ||
    tour_die "no env-dump found (looked in \$SLURMLAB_BIN, build/default/bin, build/ci/bin): build it first (cmake --preset default && cmake --build --preset default --target env-dump) or set SLURMLAB_BIN."
  export SLURMLAB_BIN
fi

title "Tour: interactive work (salloc, srun, srun --pty)"
explain "Typed into a real terminal on the local cluster (tools/local-slurm up); login\$ is" \
  "the prompt of the machine you submit from. On a real cluster add --partition and" \
  "--account (or export SALLOC_PARTITION/SALLOC_ACCOUNT and SLURM_PARTITION/SLURM_ACCOUNT)."

section "salloc: an allocation, and a shell that uses it"
hidden 'terminal_start'
type_in 'salloc --nodes=2 --ntasks-per-node=2 --gpus-per-task=1 --time=00:05:00' 'Granted job allocation'
explain "salloc waits until the resources are granted, then starts a shell. That shell still" \
  "runs where you typed salloc (here the login side); the nodes are only reserved for you." \
  "Everything you start from it with srun runs on them, as steps of the allocation's job."
type_in 'echo "job $SLURM_JOB_ID on $SLURM_JOB_NODELIST: $SLURM_NTASKS tasks, $SLURM_NTASKS_PER_NODE per node"'
type_in 'scontrol show job $SLURM_JOB_ID | grep -E " NodeList=|NumNodes=|TresPerTask"'
explain "The allocation's shape, as Slurm sees it: scontrol is how you verify what an" \
  "interactive job was really given."

section "srun inside the allocation"
type_in 'srun -l bash -c '"'"'echo "$SLURMD_NODENAME local rank $SLURM_LOCALID CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"'"'"' | sort'
explain "srun takes the allocation's shape (2 nodes x 2 tasks) and starts one task each; -l" \
  "prefixes every line with the task rank. With --gpus-per-task=1 each task sees only its" \
  "own GPU (CUDA_VISIBLE_DEVICES 0 or 1)."
type_in 'srun $SLURMLAB_BIN/env-dump --output-dir env-dump-$SLURM_JOB_ID 2>&1 | head -n 14' 'rank'
explain "env-dump is slurmlab's probe: the job and step, nodes, tasks per node (and why" \
  "SLURM_NTASKS_PER_NODE is or is not set), and per rank its node, local id, CPUs and GPU" \
  "binding; the diagnostics below it name anything odd about the layout."
type_in 'exit' 'Relinquishing job allocation'
explain "Leaving the shell gives the nodes back. An allocation also ends at its --time."

section "srun --pty: a shell on a compute node"
type_in 'srun --nodes=1 --ntasks=1 --time=00:02:00 --pty bash --norc -i' '' 60
type_in 'echo "on $SLURMD_NODENAME in job $SLURM_JOB_ID, step $SLURM_STEP_ID, terminal $(tty)"'
explain "Now the shell itself runs on the node (SLURMD_NODENAME), as step 0 of a new job," \
  "with a pseudo-terminal (--pty), so editors and top work. It is the quick way to look" \
  "around a node, e.g. nvidia-smi on a GPU partition."
type_in 'exit'
hidden 'terminal_stop'
explain "The job ends with the shell. Without an exit, it ends at its --time; an idle" \
  "interactive shell holds its resources all the while, so exit when you are done."
tour_end
