// Runs under mpirun -np 4: cli::ProgramRun, the start every program shares. One output
// directory for the job as rank 0 expands it, a log per rank that begins with where the rank
// runs, and a bad --output-dir or --log-pattern ending every rank with status 2.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../support/mpi_gtest.hpp"
#include "slurmlab/cli/program_run.hpp"
#include "slurmlab/core/errors.hpp"

namespace fs = std::filesystem;
using namespace slurmlab;

namespace {

cluster::MpiSession* session = nullptr;

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The same fresh directory name on every rank (rank 0's pid).
fs::path scratch(const std::string& name) {
  return session->broadcast(
      (fs::temp_directory_path() / ("program-run-" + std::to_string(::getpid())) / name).string());
}

cluster::RankContext context() {
  return cluster::RankContext::establish(*session, cluster::Environment::from_process(), cluster::DevicePreference::cpu,
                                         /*allow_sharing=*/true);
}

int exit_code_of_start(const cli::CommonOptions& options) {
  try {
    cli::ProgramRun::start(*session, options, context());
  } catch (const ProgramExit& exit) {
    return exit.code();
  }
  return 0;
}

}  // namespace

TEST(ProgramRun, OneDirectoryAsRankZeroExpandsItAndALogPerRank) {
  const auto base = scratch("shared");
  cli::CommonOptions options;
  options.output_dir = (base / "run-%t").string();  // %t differs per rank: rank 0's name wins
  options.seed = 7;
  auto run = cli::ProgramRun::start(*session, options, context());
  EXPECT_EQ(run.output_dir(), base / "run-0");
  EXPECT_TRUE(fs::is_directory(run.output_dir()));
  if (!session->is_root()) {
    EXPECT_FALSE(fs::exists(base / ("run-" + std::to_string(session->rank()))));
  }
  run.log().line("second line");
  const auto log = read(run.output_dir() / ("rank-" + std::to_string(session->rank()) + ".log"));
  EXPECT_NE(log.find("Z test_program_run: rank " + std::to_string(session->rank()) + " of " +
                     std::to_string(session->size())),
            std::string::npos)
      << log;
  EXPECT_LT(log.find("test_program_run: rank"), log.find("second line")) << log;

  const auto& attributes = run.attributes();
  EXPECT_EQ(attributes.program, "test_program_run");
  EXPECT_EQ(attributes.seed, 7u);
  EXPECT_EQ(attributes.world_size, session->size());
  // SLURM_JOB_ID itself, empty when unset (mpirun outside Slurm, as this suite runs).
  const char* job_id = std::getenv("SLURM_JOB_ID");
  EXPECT_EQ(attributes.job_id, std::string(job_id != nullptr ? job_id : ""));
  session->barrier();
  if (session->is_root()) fs::remove_all(base.parent_path());
}

TEST(ProgramRun, ABadLogPatternOrOutputDirEndsEveryRankWithStatusTwo) {
  const auto base = scratch("bad");
  cli::CommonOptions options;
  options.output_dir = base.string();
  options.log_pattern = "job.log";  // one file for every rank
  EXPECT_EQ(exit_code_of_start(options), kUsageExitCode);

  options.log_pattern = "rank-%t.log";
  if (session->is_root()) {
    fs::create_directories(base);
    std::ofstream(base / "file") << "not a directory";
  }
  session->barrier();
  options.output_dir = (base / "file" / "run").string();
  EXPECT_EQ(exit_code_of_start(options), kUsageExitCode);
  session->barrier();
  if (session->is_root()) fs::remove_all(base.parent_path());
}

int main(int argc, char** argv) {
  cluster::MpiSession mpi(argc, argv, "test_program_run");
  session = &mpi;
  ::testing::InitGoogleTest(&argc, argv);
  return slurmlab::testing::run_all_tests_on_every_rank(mpi.is_root());
}
