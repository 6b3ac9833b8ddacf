#pragma once
// Slurm preemption: SIGUSR1 (from `#SBATCH --signal=USR1@90`) and SIGTERM (the time limit,
// scancel) only set a flag; the trainer looks at it at the next step boundary, all ranks agree
// (one small MPI_Allreduce), rank 0 writes a resumable checkpoints/last.h5 and, on SIGUSR1,
// requeues the job (`scontrol requeue <id>`, as Lightning's SLURMEnvironment); the requeued
// job resumes with fit(..., "last").
//
// Contract
//   Signals: PreemptionHandler installs the handlers for its lifetime and restores the previous
//     ones after; the handler only stores the signal number (async-signal-safe). One handler
//     object at a time per process.
//   Requeue: a task of a job array requeues itself, <array job>_<task>, not the whole array
//     (Lightning #15022). When scontrol cannot be started (a container without Slurm's
//     tools, Lightning #21404) the result says so in one sentence; the checkpoint is written
//     before, either way.
//   Threads: pending()/clear() may be called from any thread.
#include <string>

#include "slurmlab/cluster/slurm_environment.hpp"

namespace slurmlab::train {

class PreemptionHandler {
 public:
  PreemptionHandler();
  ~PreemptionHandler();
  PreemptionHandler(const PreemptionHandler&) = delete;
  PreemptionHandler& operator=(const PreemptionHandler&) = delete;
  // The last signal received (SIGUSR1 or SIGTERM), 0 when none.
  static int pending();
  static void clear();
};

// "<SLURM_ARRAY_JOB_ID>_<SLURM_ARRAY_TASK_ID>" in an array, else SLURM_JOB_ID; empty outside a job.
std::string requeue_job_id(const cluster::SlurmEnvironment& slurm);

struct RequeueResult {
  bool requeued = false;
  std::string message;  // one sentence for the log, success or not
};

// Runs `<scontrol> requeue <job_id>` and waits for it. Requeued: scontrol exited 0, or was ended
// by SIGTERM/SIGKILL, which is Slurm stopping this step for the requeue it just accepted.
RequeueResult requeue_job(const std::string& job_id, const std::string& scontrol = "scontrol");

}  // namespace slurmlab::train
