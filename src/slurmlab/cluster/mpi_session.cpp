#include "slurmlab/cluster/mpi_session.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <numeric>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/io/atomic_file.hpp"

namespace slurmlab::cluster {
namespace {

std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

// One write(2) for a whole message: std::cerr sends every << piece as its own write, and
// mpirun forwards each piece separately, so its MPI_ABORT banner could land inside our line.
void write_stderr(const std::string& text) {
  std::cerr.flush();
  io::write_all(STDERR_FILENO, text);  // on failure there is nowhere left to report to
}

}  // namespace

std::string out_of_memory_message(const std::bad_alloc& error) {
  std::string what = error.what();
  // A bare std::bad_alloc (from the standard library's containers) says only its own name.
  if (what.find("out of") == std::string::npos) what = "out of host memory (" + what + ")";
  return what + "; give the job more memory (sbatch --mem, --mem-per-cpu or --mem-per-gpu) or make the run "
                "smaller (a smaller batch or problem size)";
}

std::vector<std::pair<std::string, std::string>> singleton_mpi_settings(const Environment& environment,
                                                                        bool open_mpi) {
  if (!open_mpi) return {};
  // mpirun/prterun, PMIx (srun --mpi=pmix, prterun) and PMI-1/2 (srun --mpi=pmi2) each leave these.
  for (const char* launcher : {"OMPI_COMM_WORLD_SIZE", "OMPI_MCA_orte_hnp_uri", "PRTE_LAUNCHED", "PMIX_RANK",
                               "PMI_RANK", "PMI_FD"}) {
    if (environment.has(launcher)) return {};
  }
  std::vector<std::pair<std::string, std::string>> settings;
  for (auto [name, value] : {std::pair{"OMPI_MCA_ess_singleton_isolated", "1"}, std::pair{"OMPI_MCA_pml", "ob1"}}) {
    if (!environment.has(name)) settings.emplace_back(name, value);
  }
  return settings;
}

MpiSession::MpiSession(int& argc, char**& argv, std::string program) : program_(std::move(program)) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
#ifdef OPEN_MPI
    constexpr bool open_mpi = true;
#else
    constexpr bool open_mpi = false;
#endif
    for (const auto& [name, value] : singleton_mpi_settings(Environment::from_process(), open_mpi)) {
      setenv(name.c_str(), value.c_str(), 0);
    }
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

std::vector<std::string> MpiSession::gather(const std::string& mine, int root) const {
  int length = static_cast<int>(mine.size());
  std::vector<int> lengths(rank_ == root ? size_ : 0);
  MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, root, MPI_COMM_WORLD);
  std::vector<int> offsets(lengths.size());
  std::string all;
  if (rank_ == root) {
    std::exclusive_scan(lengths.begin(), lengths.end(), offsets.begin(), 0);
    all.resize(static_cast<std::size_t>(std::accumulate(lengths.begin(), lengths.end(), 0)));
  }
  MPI_Gatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, root, MPI_COMM_WORLD);
  std::vector<std::string> result;
  for (std::size_t r = 0; r < lengths.size(); ++r)
    result.push_back(all.substr(static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(lengths[r])));
  return result;
}

std::vector<std::string> MpiSession::allgather(const std::string& mine) const {
  int length = static_cast<int>(mine.size());
  std::vector<int> lengths(static_cast<std::size_t>(size_));
  MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD);
  std::vector<int> offsets(lengths.size());
  std::exclusive_scan(lengths.begin(), lengths.end(), offsets.begin(), 0);
  std::string all(static_cast<std::size_t>(std::accumulate(lengths.begin(), lengths.end(), 0)), '\0');
  MPI_Allgatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, MPI_COMM_WORLD);
  std::vector<std::string> result;
  for (std::size_t r = 0; r < lengths.size(); ++r)
    result.push_back(all.substr(static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(lengths[r])));
  return result;
}

std::string MpiSession::broadcast(const std::string& value, int root) const {
  int length = static_cast<int>(value.size());
  MPI_Bcast(&length, 1, MPI_INT, root, MPI_COMM_WORLD);
  std::string result = rank_ == root ? value : std::string(static_cast<std::size_t>(length), '\0');
  MPI_Bcast(result.data(), length, MPI_CHAR, root, MPI_COMM_WORLD);
  return result;
}

void MpiSession::barrier() const { MPI_Barrier(MPI_COMM_WORLD); }

void MpiSession::run_collectively(const std::function<void()>& step) const {
  int code = 0;
  std::string message;
  try {
    step();
  } catch (const ProgramExit&) {
    throw;  // a deliberate, agreed exit (--help): every rank takes the same path
  } catch (const UsageError& e) {
    code = kUsageExitCode;
    message = e.what();
    if (!e.details().empty()) message += "\n" + e.details();
  } catch (const std::bad_alloc& e) {
    code = 1;
    message = out_of_memory_message(e);
  } catch (const std::exception& e) {
    code = 1;
    message = e.what();
  }
  // MAXLOC picks the worst code and, among equals, the lowest rank that has it.
  struct {
    int code;
    int rank;
  } mine{code, rank_}, worst{};
  MPI_Allreduce(&mine, &worst, 1, MPI_2INT, MPI_MAXLOC, MPI_COMM_WORLD);
  if (worst.code == 0) return;
  std::string reported = broadcast(message, worst.rank);
  if (rank_ == 0) {
    std::string where = size_ > 1 && worst.rank != 0 ? " (rank " + std::to_string(worst.rank) + ")" : "";
    write_stderr(program_ + ": error" + where + ": " + reported + "\n");
  }
  throw ProgramExit(worst.code);
}

void MpiSession::abort(const std::string& message, int code) const {
  std::string where = size_ > 1 ? " on rank " + std::to_string(rank_) + " (" + host_name() + ")" : "";
  std::string text = program_ + ": error" + where + ": " + message + "\n";
  if (size_ == 1) {
    write_stderr(text);
    MPI_Finalize();
    std::exit(code);
  }
  write_stderr(text + program_ + ": ending all " + std::to_string(size_) + " ranks.\n");
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; keep the compiler and the reader sure of it
}

int run_mpi_program(int argc, char** argv, const std::string& program,
                    const std::function<int(MpiSession&, int, char**)>& body) {
  MpiSession session(argc, argv, program);
  try {
    return body(session, argc, argv);
  } catch (const ProgramExit& exit) {
    return exit.code();
  } catch (const UsageError& e) {
    session.abort(e.what(), kUsageExitCode);
  } catch (const std::bad_alloc& e) {
    session.abort(out_of_memory_message(e), 1);
  } catch (const std::exception& e) {
    session.abort(e.what(), 1);
  }
}

}  // namespace slurmlab::cluster
