#include "slurmlab/train/preemption.hpp"

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <vector>

extern char** environ;

namespace slurmlab::train {
namespace {

volatile std::sig_atomic_t received_signal = 0;
struct sigaction previous_usr1, previous_term;

extern "C" void remember_signal(int signal) {
  received_signal = signal;
}

}  // namespace

PreemptionHandler::PreemptionHandler() {
  struct sigaction action {};
  action.sa_handler = remember_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // a signal during a blocking read or MPI call does not fail it
  sigaction(SIGUSR1, &action, &previous_usr1);
  sigaction(SIGTERM, &action, &previous_term);
}

PreemptionHandler::~PreemptionHandler() {
  sigaction(SIGUSR1, &previous_usr1, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
}

int PreemptionHandler::pending() {
  return received_signal;
}
void PreemptionHandler::clear() {
  received_signal = 0;
}

std::string requeue_job_id(const cluster::SlurmEnvironment& slurm) {
  if (slurm.array_job_id && slurm.array_task_id) return *slurm.array_job_id + "_" + *slurm.array_task_id;
  return slurm.job_id.value_or("");
}

RequeueResult requeue_job(const std::string& job_id, const std::string& scontrol) {
  if (job_id.empty()) return {false, "not requeued: this process is not part of a Slurm job (no SLURM_JOB_ID)"};
  std::vector<std::string> words{scontrol, "requeue", job_id};
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  pid_t child = 0;
  const int spawned = posix_spawnp(&child, scontrol.c_str(), nullptr, nullptr, argv.data(), environ);
  if (spawned != 0) {
    return {false, "not requeued: '" + scontrol + "' could not be started (" + std::strerror(spawned) +
                       "; inside a container without Slurm's tools?); resubmit the job, which resumes from "
                       "checkpoints/last.h5"};
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {true, "requeued job " + job_id};
  // A requeue that takes effect stops the job's steps at once: slurmstepd signals every process
  // of this step, scontrol included, often before scontrol has exited with its 0 (seen on the
  // local Slurm's two-node requeue test). A refused requeue exits non-zero instead.
  if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGKILL)) {
    return {true, "requeued job " + job_id + " (Slurm stopped this step for the requeue before '" + scontrol +
                      "' could exit: signal " + std::to_string(WTERMSIG(status)) + ")"};
  }
  return {false, "not requeued: '" + scontrol + " requeue " + job_id + "' failed (exit " +
                     std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
                     "; does the job allow requeue, sbatch --requeue?)"};
}

}  // namespace slurmlab::train
