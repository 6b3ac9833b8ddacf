#!/usr/bin/env bash
# examples/tour/accounting.sh: sacct for a finished job (elapsed time, state, exit code,
# peak memory per step), sacct -X --starttime, sreport and tools/seff.
#   examples/tour/accounting.sh [--quiet|--markdown|--outline]
# Needs a cluster with accounting: tools/local-slurm up --accounting (or a real cluster).
# shellcheck disable=SC2016 source-path=SCRIPTDIR # commands shown as typed, $variables and all
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tour_init "$@"

if [ "$tour_mode" != outline ] && [ "$(scontrol show config | awk '$1 == "AccountingStorageType" { print $3 }')" != accounting_storage/slurmdbd ]; then
  tour_die "this cluster keeps no accounting (AccountingStorageType is not slurmdbd): start the local one with 'tools/local-slurm down && tools/local-slurm up --accounting'."
fi

title "Tour: accounting (sacct, sreport, seff)"
explain "Slurm's accounting database (slurmdbd) keeps every job and step after it left the" \
  "queue: squeue and scontrol forget a job minutes after it ends, sacct does not. Locally:" \
  "tools/local-slurm up --accounting."

section "A job with two steps, one that fails"
show 'job=$(sbatch --parsable --job-name=tour-acct --nodes=1 --ntasks=2 --time=00:02:00 --output=tour-acct-%j.out --wrap "srun python3 -c \"x = bytearray(60_000_000); import time; time.sleep(2)\"; srun --ntasks=1 bash -c \"exit 3\"; echo done"); echo $job'
hidden 'track $job'
hidden 'wait_for 60 "job_ended $job"'
hidden 'wait_for 30 "sacct -n -j $job.1 -o State | grep -q FAILED"'
show 'sacct -j $job --format=JobID,JobName,Elapsed,State,ExitCode,MaxRSS,AllocTRES%40'
explain "One row for the job, one for the batch script (.batch) and one per srun step (.0," \
  ".1). Step 0 held 60 MB per task: MaxRSS is the peak resident memory of its largest" \
  "task, the number to size --mem by. Step 1 FAILED with ExitCode 3:0 (status:signal)," \
  "yet the job is COMPLETED: the script went on and its last command succeeded. Check" \
  "the steps, not only the job. AllocTRES is what was allocated (cpu, mem, node, gres/gpu)."

section "Your jobs since a time: sacct -X --starttime"
show 'sacct -X --starttime=now-1hour --format=JobID,JobName%14,State,ExitCode,Elapsed | tail -n 5'
explain "-X shows the jobs only (no steps), --starttime (-S) the window: today, now-1hour," \
  "2026-12-01. -u \$USER or --allusers choose whose; -n -P give parseable lines for scripts."

section "Usage reports: sreport"
show 'sreport -t hours cluster utilization start=$(date +%F) | head -n 12'
explain "sreport sums the database over a period: cluster utilization, user and account" \
  "top lists (sreport user top). Sites use it for quotas; here the numbers are tiny."

section "An efficiency summary: tools/seff"
show '"$tour_repo"/tools/seff $job'
explain "seff-style, computed from sacct: CPU efficiency is CPU time over elapsed time times" \
  "cores; memory efficiency is the largest step's MaxRSS over the memory the job was" \
  "given. Low numbers mean ask for less next time (and wait less in the queue)."
tour_end
