#!/usr/bin/env bash
# examples/tour/inspect.sh: scontrol show job/node/partition, scontrol show
# hostnames, and hold/release/update of a pending job.
#   examples/tour/inspect.sh [--quiet|--markdown|--outline]
# Needs a cluster (tools/local-slurm up); submits small jobs and cancels them.
# shellcheck disable=SC2016 source-path=SCRIPTDIR # commands shown as typed, $variables and all
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tour_init "$@"

title "Tour: inspecting jobs, nodes and partitions (scontrol)"
explain "Real commands and their real output on the local cluster (tools/local-slurm up)." \
  "scontrol shows what Slurm actually granted, which is not always what you meant to ask for."

section "A running job on two nodes"
show 'job=$(sbatch --parsable --job-name=tour-inspect --nodes=2 --ntasks-per-node=2 --gpus-per-task=1 --time=00:05:00 --wrap "sleep 120"); echo $job'
hidden 'track $job'
hidden 'wait_for 30 "[ \"\$(job_state $job)\" = RUNNING ]"'
show 'scontrol show job $job'
explain "Worth reading: JobState and Reason; RunTime against TimeLimit; NodeList (where it" \
  "runs) and NumNodes/NumCPUs/NumTasks; NtasksPerN:B:S:C (2 = the --ntasks-per-node you" \
  "asked for); TRES (cpu, memory, nodes allocated; gres/gpu too where the site accounts" \
  "for GPUs, as the accounting tour's cluster does); TresPerTask" \
  "(gres:gpu:1 = --gpus-per-task=1); StdOut (where the output goes); after the end," \
  "ExitCode as status:signal. scontrol -o puts it all on one line, for grep."
show 'scontrol -o show job $job | grep -o " NodeList=[^ ]*"'

section "Node lists: scontrol show hostnames"
show 'nodelist=$(squeue -h -j $job -o %N); echo $nodelist'
show 'scontrol show hostnames $nodelist'
show 'scontrol show hostlist node1,node2,node3'
explain "Slurm writes node sets compressed (node[1-2]). show hostnames expands them, one per" \
  "line, as a job script does with SLURM_JOB_NODELIST to pick a master address" \
  "(head -n 1); show hostlist compresses a list again."

section "A node and a partition"
show 'scontrol show node $(scontrol show hostnames $nodelist | head -n 1)'
explain "CPUAlloc of CPUTot, AllocTRES (what jobs hold now) against CfgTRES" \
  "(what the node has), Gres=gpu:2, RealMemory and State (IDLE, MIXED, ALLOCATED; DRAIN or" \
  "DOWN with a Reason= line when a node is taken out)."
show 'scontrol show partition $(squeue -h -j $job -o %P)'
explain "MaxTime (the longest --time allowed), Nodes, TotalCPUs, Default=YES (used when you" \
  "give no --partition), and limits such as MaxNodes. sinfo -s summarises every partition."

section "Hold, update and release a pending job"
show 'pending=$(sbatch --parsable --job-name=tour-held --hold --nodes=1 --time=00:05:00 --wrap "sleep 1"); echo $pending'
hidden 'track $pending'
show 'squeue -j $pending -o "%.8i %.12j %.8T %.10l %R"'
explain "Submitted held (--hold): it keeps its place in the queue but never starts. Reason" \
  "JobHeldUser is a hold you placed (scontrol hold JOBID does the same to a waiting job);" \
  "JobHeldAdmin is an administrator's (or root's), which only they can release."
show 'scontrol update JobId=$pending TimeLimit=00:01:00 JobName=tour-updated'
show 'scontrol show job $pending | grep -E "JobName|TimeLimit"'
explain "While a job pends you may change it: time limit (down; up needs an admin), name," \
  "partition, node count, dependency... No need to cancel and resubmit."
show 'scontrol release $pending'
hidden 'wait_for 30 "job_ended $pending"'
show 'scontrol show job $pending | grep -E "JobState|ExitCode"'
explain "Released, it was scheduled as soon as a node was free and ran to completion;" \
  "ExitCode=0:0 is exit status 0, no signal."

section "Clean up"
show 'scancel $job'
tour_end
