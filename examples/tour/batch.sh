#!/usr/bin/env bash
# examples/tour/batch.sh: a multi-node sbatch job with per-rank output files,
# SLURM_NTASKS_PER_NODE set and unset, sbatch --test-only, job arrays (%A_%a),
# dependencies (afterok, afterany) and scancel by id, name and state.
#   examples/tour/batch.sh [--quiet|--markdown|--outline]
# Needs a cluster (tools/local-slurm up); its jobs take a few seconds each.
# shellcheck disable=SC2016 source-path=SCRIPTDIR # commands shown as typed, $variables and all
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tour_init "$@"

title "Tour: batch jobs (sbatch, arrays, dependencies, scancel)"
explain "Real commands and their real output on the local cluster (tools/local-slurm up)." \
  "Every job writes into the current directory, which must be one all nodes see (your home" \
  "or project directory on a real cluster, never /tmp)."

section "A job script: two nodes, two tasks each, one output file per rank"
hidden 'rm -f tour-batch-*.out rank-*.out tour-array-*.out tour-dep-*.out'
hidden 'cat >tour-batch.sbatch <<"EOF"
#!/bin/bash
#SBATCH --job-name=tour-batch
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=2
#SBATCH --time=00:02:00
#SBATCH --output=tour-batch-%j.out
# Up to here Slurm reads #SBATCH lines; the rest runs on the first node.
echo "batch script on $SLURMD_NODENAME: job $SLURM_JOB_ID, nodes $SLURM_JOB_NODELIST"
echo "SLURM_NTASKS=$SLURM_NTASKS SLURM_NTASKS_PER_NODE=${SLURM_NTASKS_PER_NODE-unset}"
# One job step over all 4 tasks; %j = job id, %t = task rank: one file per rank.
srun --output=rank-%j-%t.out bash -c "echo rank \$SLURM_PROCID of \$SLURM_NTASKS on \$SLURMD_NODENAME, local rank \$SLURM_LOCALID"
EOF'
show 'cat tour-batch.sbatch'
explain "The #SBATCH lines are sbatch options written into the script (options on the sbatch" \
  "command line win over them). --output names the batch log, %j becoming the job id; srun" \
  "--output=rank-%j-%t.out gives each task its own file (%t the task rank, %N the node, %n" \
  "the node-local rank; see man srun, filename pattern)."
show 'sbatch --test-only tour-batch.sbatch'
explain "--test-only asks the scheduler where and when the job would run, and submits" \
  "nothing: a quick check of a script's resource request."
show 'job=$(sbatch --parsable tour-batch.sbatch); echo $job'
hidden 'track $job'
hidden 'wait_for 60 "job_ended $job"'
show 'cat tour-batch-$job.out'
show 'ls rank-$job-*.out'
show 'cat rank-$job-*.out'
explain "Four files, ranks 0 and 1 on the first node, 2 and 3 on the second (Slurm fills" \
  "nodes in blocks). SLURM_NTASKS_PER_NODE=2 is set because the job asked for" \
  "--ntasks-per-node."
show 'ntasks_only=$(sbatch --parsable --job-name=tour-ntasks --nodes=2 --ntasks=4 --time=00:01:00 --output=tour-batch-%j.out --wrap "echo SLURM_TASKS_PER_NODE=\$SLURM_TASKS_PER_NODE SLURM_NTASKS_PER_NODE=\${SLURM_NTASKS_PER_NODE-unset}"); echo $ntasks_only'
hidden 'track $ntasks_only'
hidden 'wait_for 60 "job_ended $ntasks_only"'
show 'cat tour-batch-$ntasks_only.out'
explain "Asked with --ntasks instead, Slurm picks the spread itself: SLURM_TASKS_PER_NODE" \
  "says what it chose, and SLURM_NTASKS_PER_NODE is not set at all. Programs that need one" \
  "task per GPU (one rank per device) should say --ntasks-per-node."

section "Job arrays: one script, many tasks"
show 'array=$(sbatch --parsable --job-name=tour-array --array=1-4%2 --time=00:01:00 --output=tour-array-%A_%a.out --wrap "echo array task \$SLURM_ARRAY_TASK_ID of job \$SLURM_ARRAY_JOB_ID; sleep 2"); echo $array'
hidden 'track $array'
show 'squeue -r -j $array -o "%.12i %.10T %R"'
explain "--array=1-4%2 makes four tasks, at most two running at once (%2). squeue -r lists" \
  "each task as JOBID_TASKID; without -r the waiting ones are folded into one line such as" \
  "12_[3-4%2]. In --output, %A is the array's job id and %a the task id."
hidden 'wait_for 60 "job_ended ${array}_1 && job_ended ${array}_2 && job_ended ${array}_3 && job_ended ${array}_4"'
show 'ls tour-array-${array}_*.out'
show 'cat tour-array-${array}_*.out'
explain "Each task got SLURM_ARRAY_TASK_ID (use it to pick an input file or a" \
  "hyper-parameter) and the same SLURM_ARRAY_JOB_ID."

section "Dependencies: afterok and afterany"
show 'first=$(sbatch --parsable --job-name=tour-first --time=00:01:00 --output=tour-dep-%j.out --wrap "sleep 4; echo first done"); echo $first'
show 'then_ok=$(sbatch --parsable --job-name=tour-then-ok --dependency=afterok:$first --time=00:01:00 --output=tour-dep-%j.out --wrap "echo ran after $first"); echo $then_ok'
show 'failing=$(sbatch --parsable --job-name=tour-failing --time=00:01:00 --output=tour-dep-%j.out --wrap "exit 3"); echo $failing'
show 'never=$(sbatch --parsable --job-name=tour-never --dependency=afterok:$failing --kill-on-invalid-dep=no --time=00:01:00 --output=tour-dep-%j.out --wrap "echo unreachable"); echo $never'
show 'anyway=$(sbatch --parsable --job-name=tour-anyway --dependency=afterany:$failing --time=00:01:00 --output=tour-dep-%j.out --wrap "echo ran after $failing ended, whatever its exit"); echo $anyway'
hidden 'track $first $then_ok $failing $never $anyway'
show 'squeue -j $first,$then_ok -o "%.8i %.14j %.8T %R"'
explain "The dependent job waits with reason Dependency while the first one runs: afterok" \
  "starts it only if the first ends with exit status 0, afterany whatever happens," \
  "afternotok only after a failure, singleton after every earlier job of the same name."
hidden 'wait_for 60 "job_ended $then_ok && job_ended $anyway && job_ended $failing"'
hidden 'wait_for 30 "squeue -h -j $never -o %R | grep -q DependencyNeverSatisfied"'
show 'for j in $first $then_ok; do scontrol show job $j | grep -oE "(JobName|JobState|StartTime|EndTime)=[^ ]*" | paste -sd " "; done'
explain "tour-then-ok started only when tour-first had ended (its StartTime is not before the" \
  "first one's EndTime)."
show 'squeue -j $never -o "%.8i %.14j %.8T %R"'
show 'for j in $failing $anyway; do scontrol show job $j | grep -oE "(JobName|JobState|ExitCode)=[^ ]*" | paste -sd " "; done'
explain "The failing job ended with exit status 3, so afterok can never be met:" \
  "DependencyNeverSatisfied, a job that would wait forever (many sites cancel such jobs" \
  "at once, which --kill-on-invalid-dep=yes asks for). afterany ran regardless."

section "scancel: by id, by name, by state"
show 'a=$(sbatch --parsable --hold --job-name=tour-cancel-a --wrap "sleep 1"); b=$(sbatch --parsable --hold --job-name=tour-cancel-b --wrap "sleep 1"); c=$(sbatch --parsable --hold --job-name=tour-cancel-c --wrap "sleep 1"); echo $a $b $c'
hidden 'track $a $b $c'
show 'scancel $a'
show 'scancel --name=tour-cancel-b'
show 'scancel --state=PENDING --name=tour-cancel-c'
show 'scancel $never'
hidden 'wait_for 30 "job_ended $a && job_ended $b && job_ended $c && job_ended $never"'
show 'for j in $a $b $c; do scontrol show job $j | grep -oE "(JobName|JobState)=[^ ]*" | paste -sd " "; done'
explain "scancel JOBID cancels one job (JOBID_TASK one array task); --name, --state" \
  "(--state=PENDING: only those still waiting) and -u \$USER select several; combined they" \
  "must all match. scancel --signal=USR1 JOBID sends a signal instead, e.g. to make a" \
  "trainer write a checkpoint."
tour_end
