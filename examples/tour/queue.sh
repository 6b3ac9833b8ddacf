#!/usr/bin/env bash
# examples/tour/queue.sh: squeue, its format strings, pending reasons and
# `squeue --start` for a job that must wait behind a blocker.
#   examples/tour/queue.sh [--quiet|--markdown|--outline]
# Needs a cluster (tools/local-slurm up); submits two small jobs and cancels them.
# shellcheck disable=SC2016 source-path=SCRIPTDIR # commands shown as typed, $variables and all
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tour_init "$@"

title "Tour: the queue (squeue)"
explain "Real commands and their real output on the local cluster (tools/local-slurm up: 4 nodes," \
  "4 CPUs and 2 fake GPUs each). Job ids, times and user names differ on your run; on a real" \
  "cluster add --partition and --account (or export SBATCH_PARTITION and SBATCH_ACCOUNT)."

section "Fill the cluster, then ask for more"
show 'nodes=$(sinfo -h -o %D | head -n 1); echo "$nodes nodes"'
show 'blocker=$(sbatch --parsable --job-name=tour-blocker --nodes=$nodes --exclusive --time=00:10:00 --wrap "sleep 300"); echo $blocker'
hidden 'track $blocker'
show 'waiter=$(sbatch --parsable --job-name=tour-waiter --nodes=1 --time=00:02:00 --wrap "sleep 1"); echo $waiter'
hidden 'track $waiter'
explain "The blocker takes every node whole (--exclusive) for up to 10 minutes, so the second" \
  "job cannot start until it ends. sbatch --parsable prints only the job id, handy in scripts."
hidden 'wait_for 30 "[ \"\$(job_state $blocker)\" = RUNNING ]"'

section "squeue: what is queued, and why"
show 'squeue -u $USER'
explain "ST is the state: R running, PD pending, CG completing. For a running job the last" \
  "column lists its nodes; for a pending one it gives the reason in brackets: Resources" \
  "(waiting for nodes to free up), Priority (another job goes first), Dependency," \
  "BeginTime (asked to start later), JobHeldUser/JobHeldAdmin (held), QOS... limits (site" \
  "rules). On a shared cluster always filter: squeue -u \$USER or squeue --me."

section "squeue --start: when will it run?"
hidden 'wait_for 60 "squeue -h --start -j $waiter -o %S | grep -q T"'
show 'squeue --start -j $waiter'
explain "START_TIME is the scheduler's estimate, here the blocker's time limit: the worst case" \
  "it plans with. Right after submission it can read N/A, because the estimate comes from" \
  "the backfill scheduler, which runs periodically (every 5 s here, 30 s or more on real" \
  "clusters). A short, honest --time lets backfill start a job earlier in a gap."

section "Format strings and state filters"
show 'squeue -u $USER -t PENDING -o "%.8i %.12j %.8T %.20S %.10l %R"'
show 'squeue -u $USER -t RUNNING -o "%.8i %.12j %.8T %.10M %.6D %N"'
show 'squeue -u $USER -O "JobID:8,Name:14,State:10,Reason:12,TimeLimit:12,NumNodes:6"'
explain "-o takes printf-like fields: %i job id, %j name, %T long state, %S (expected) start," \
  "%l time limit, %M time used, %D node count, %N node list, %R reason or node list;" \
  "%.8i right-aligns in 8 columns. -O (--Format) takes field names instead. -t filters by" \
  "state (PENDING, RUNNING, ...). Put a favourite in SQUEUE_FORMAT to make it the default."

section "Clean up"
show 'scancel $blocker $waiter'
hidden 'wait_for 30 "job_ended $blocker && job_ended $waiter"'
show 'squeue -u $USER -h -n tour-blocker,tour-waiter | wc -l'
explain "scancel takes job ids (or --name, --state, -u; see the batch tour). Nothing of" \
  "ours is left in the queue."
tour_end
