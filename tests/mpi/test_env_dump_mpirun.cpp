// env-dump and the failure path under mpirun -np 4 --oversubscribe (no Slurm).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../support/process.hpp"

namespace fs = std::filesystem;
using namespace slurmlab::testing;

namespace {

const std::string kBin = SLURMLAB_BINARY_DIR "/bin";



// Four ranks; with `mask`, every rank sees CUDA_VISIBLE_DEVICES=mask (as --gpus-per-node gives).
CommandResult env_dump(const fs::path& dir, const std::string& mask, const std::string& flags) {
  std::string prefix = mask.empty() ? "" : "CUDA_VISIBLE_DEVICES=" + mask + " ";
  std::string forward = mask.empty() ? "" : "-x CUDA_VISIBLE_DEVICES ";
  return run_command(prefix + mpirun(4) + forward + kBin + "/env-dump --output-dir " + dir.string() + " " + flags, 120);
}

nlohmann::json run_env_dump(const fs::path& dir, const std::string& mask, const std::string& flags = "") {
  auto result = env_dump(dir, mask, flags);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return nlohmann::json::parse(read_file(dir / "env-dump.json"));
}

}  // namespace

TEST(EnvDumpMpirun, GatheredTableHasEveryRankInOrder) {
  auto dir = fresh_dir("env-dump-mpirun");
  auto report = run_env_dump(dir, "");
  ASSERT_EQ(report["ranks"].size(), 4u);
  std::set<long> pids;
  for (int r = 0; r < 4; ++r) {
    const auto& rank = report["ranks"][static_cast<std::size_t>(r)];
    EXPECT_EQ(rank["rank"], r);
    EXPECT_EQ(rank["local_rank"], r);  // one host
    EXPECT_EQ(rank["node_index"], 0);
    EXPECT_FALSE(rank["cpu_affinity"].get<std::string>().empty());
    pids.insert(rank["pid"].get<long>());
    // Each rank wrote its own sorted environment, and it is this rank's.
    auto env_file = dir / ("env-local-" + std::to_string(r) + ".txt");
    ASSERT_TRUE(fs::exists(env_file)) << env_file;
    auto vars = read_env_file(env_file);
    EXPECT_EQ(vars["OMPI_COMM_WORLD_RANK"], std::to_string(r));
    // Sorted as written: the names in the file's own line order (read_env_file's map sorts).
    std::istringstream lines(read_file(env_file));
    std::vector<std::string> names;
    for (std::string line; std::getline(lines, line);) {
      if (const auto equals = line.find('='); equals != std::string::npos) names.push_back(line.substr(0, equals));
    }
    EXPECT_GT(names.size(), 10u);
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
    // And its own log (--log-pattern rank-%t.log): who it is, what it wrote.
    const auto log = read_file(dir / ("rank-" + std::to_string(r) + ".log"));
    EXPECT_NE(log.find("Z env-dump: rank " + std::to_string(r) + " of 4, node "), std::string::npos) << log;
    EXPECT_NE(log.find("pid " + std::to_string(rank["pid"].get<long>()) + ","), std::string::npos) << log;
    EXPECT_NE(log.find("environment variables to env-local-" + std::to_string(r) + ".txt"), std::string::npos) << log;
  }
  EXPECT_EQ(pids.size(), 4u) << "four distinct processes";
  EXPECT_FALSE(report["job"]["in_job"].get<bool>());
  EXPECT_TRUE(report["diagnostics"].empty()) << report["diagnostics"].dump();
  auto summary = read_file(dir / "summary.txt");
  EXPECT_NE(summary.find("4 rank(s) on 1 node(s)"), std::string::npos) << summary;
  EXPECT_TRUE(fs::exists(dir / "metrics.h5"));
  // h5dump reads the table back.
  auto dump = run_command("h5dump -d /ranks/rank " + (dir / "metrics.h5").string(), 30);
  EXPECT_EQ(dump.exit_code, 0) << dump.output;
  EXPECT_NE(dump.output.find("0, 1, 2, 3"), std::string::npos) << dump.output;
}

TEST(EnvDumpMpirun, MoreRanksThanVisibleGpusIsDiagnosed) {
  auto dir = fresh_dir("env-dump-mpirun-gpus");
  auto report = run_env_dump(dir, "0,1");
  ASSERT_EQ(report["diagnostics"].size(), 1u) << report["diagnostics"].dump();
  EXPECT_EQ(report["diagnostics"][0]["code"], "gpu-binding");
  EXPECT_NE(report["diagnostics"][0]["message"].get<std::string>().find("4 tasks run on this node"), std::string::npos);

  // --strict turns an error-level finding into exit status 1.
  EXPECT_EQ(env_dump(fresh_dir("env-dump-mpirun-strict"), "0,1", "--strict").exit_code, 1);

  // Sharing on purpose: ranks 0,2 plan GPU 0 and ranks 1,3 GPU 1, and nothing is flagged.
  auto shared = run_env_dump(fresh_dir("env-dump-mpirun-shared"), "0,1", "--share-gpus");
  EXPECT_TRUE(shared["diagnostics"].empty()) << shared["diagnostics"].dump();
  EXPECT_EQ(shared["ranks"][2]["device"], "cpu (planned cuda:0, none answered)");
  EXPECT_EQ(shared["ranks"][3]["device"], "cpu (planned cuda:1, none answered)");
}

TEST(EnvDumpMpirun, UsageErrorIsOneLineFromRankZeroAndExitTwo) {
  auto result = run_command(mpirun(4) + kBin + "/env-dump --no-such-option", 120);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_EQ(count_occurrences(result.output, "env-dump: error: unrecognised option '--no-such-option'"), 1) << result.output;
  EXPECT_EQ(result.output.find("MPI_ABORT"), std::string::npos) << "a usage error is no crash: " << result.output;
  // Per-rank file patterns that cannot work: found on every rank, said once, exit 2.
  const auto refused_once = [](const std::string& dir, const std::string& options, const std::string& sentence) {
    auto r = run_command(mpirun(4) + kBin + "/env-dump --output-dir " + fresh_dir(dir).string() + " " + options, 120);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_EQ(count_occurrences(r.output, "env-dump: error: " + sentence), 1) << r.output;
  };
  refused_once("env-dump-log-pattern", "--log-pattern job.log",
               "--log-pattern 'job.log' gives all 4 ranks the same file; put %t (the rank) in it, as in 'rank-%t.log'.");
  // An empty one used to fail renaming onto the output folder (exit 1).
  refused_once("env-dump-env-pattern", "--env-file-pattern ''",
               "--env-file-pattern is empty; give one such as --env-file-pattern 'env-%j-%t.txt'.");
}

TEST(AbortPath, FailureOnOneRankEndsTheJobPromptly) {
  auto result = run_command(mpirun(4) + kBin + "/abort_probe 2", 60);
  EXPECT_FALSE(result.timed_out()) << "the other ranks hung: " << result.output;
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("abort_probe: error on rank 2"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("simulated failure on purpose."), std::string::npos) << result.output;
}

TEST(AbortPath, SingletonFailsCleanlyWithoutMpirun) {
  auto result = run_command(kBin + "/abort_probe 0", 60);
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("abort_probe: error: simulated failure on purpose."), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("MPI_ABORT"), std::string::npos) << result.output;
}
