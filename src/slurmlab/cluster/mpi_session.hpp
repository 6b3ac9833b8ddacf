#pragma once
// One MPI session per program (RAII): works under srun (PMIx), under mpirun, and
// alone as a singleton. Failures end every rank promptly, never a hang.
#include <mpi.h>

#include <functional>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "slurmlab/cluster/environment.hpp"

namespace slurmlab::cluster {

// Open MPI settings for a process that no launcher started (no mpirun, no srun with PMI/PMIx):
// it will be a singleton world of one, so it needs neither the orted that Open MPI forks for a
// possible MPI_Comm_spawn (ess_singleton_isolated) nor UCX's transport probing (pml ob1): that
// takes MPI_Init from 0.33 s to 0.05 s here, a quarter of train-classifier's time to its first
// step. Empty when a launcher is present, for another MPI, or for each variable the user set.
std::vector<std::pair<std::string, std::string>> singleton_mpi_settings(const Environment& environment,
                                                                        bool open_mpi);

class MpiSession {
 public:
  // `program` names the program in error messages ("env-dump: error: ...").
  MpiSession(int& argc, char**& argv, std::string program);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }
  MPI_Comm comm() const { return MPI_COMM_WORLD; }
  const std::string& program() const { return program_; }

  // Collective helpers for small, variable-length payloads (reports, names).
  std::vector<std::string> gather(const std::string& mine, int root = 0) const;  // empty off root
  std::vector<std::string> allgather(const std::string& mine) const;
  std::string broadcast(const std::string& value, int root = 0) const;
  void barrier() const;

  // Collective: runs `step` on every rank. If it throws on any rank, every rank learns
  // it, rank 0 prints the failing rank's message once, and all ranks throw
  // ProgramExit (2 for UsageError, else 1). Use it for anything that may fail on some
  // ranks only (options, files, GPU binding) so the others do not wait forever.
  void run_collectively(const std::function<void()>& step) const;

  // Ends the whole job now, from any one rank: message on stderr, then MPI_Abort.
  // A singleton finalizes and exits instead (no abort banner for one process).
  [[noreturn]] void abort(const std::string& message, int code) const;

 private:
  std::string program_;
  int rank_ = 0;
  int size_ = 1;
};

// The one sentence a rank that ran out of memory prints: what failed (nn's OutOfMemory names
// the device and the sizes) and the two ways out.
std::string out_of_memory_message(const std::bad_alloc& error);

// The main() of every program: starts MPI, runs `body`, and turns what escapes it into
// a clean end for all ranks: ProgramExit -> that code; an exception -> abort(1 or 2), with
// out_of_memory_message for std::bad_alloc.
int run_mpi_program(int argc, char** argv, const std::string& program,
                    const std::function<int(MpiSession&, int, char**)>& body);

}  // namespace slurmlab::cluster
