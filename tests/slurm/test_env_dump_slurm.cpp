// Label slurm: the real jobs/env-dump.sbatch on the 4-node local Slurm, results checked
// per rank.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "local_slurm.hpp"

namespace fs = std::filesystem;
using namespace slurmlab::testing;

TEST(EnvDumpSlurm, FourNodesTwoTasksEach) {
  const auto job = submit_and_wait((kSource / "jobs/env-dump.sbatch").string(), "env-dump");
  ASSERT_FALSE(job.empty());
  const auto results = kWorkDir / ("env-dump-" + job);

  // Eight per-rank environment files with what Slurm told each task.
  std::map<std::string, std::set<std::string>> gpus_by_node;
  for (int t = 0; t < 8; ++t) {
    SCOPED_TRACE("task " + std::to_string(t));
    auto file = results / ("env-" + job + "-" + std::to_string(t) + ".txt");
    ASSERT_TRUE(fs::exists(file)) << file;
    auto vars = read_env_file(file);
    EXPECT_EQ(vars["SLURM_PROCID"], std::to_string(t));
    EXPECT_EQ(vars["SLURMD_NODENAME"], "node" + std::to_string(t / 2 + 1));
    EXPECT_EQ(vars["SLURM_LOCALID"], std::to_string(t % 2));
    EXPECT_EQ(vars["SLURM_NTASKS_PER_NODE"], "2");
    ASSERT_TRUE(vars.count("CUDA_VISIBLE_DEVICES"));
    gpus_by_node[vars["SLURMD_NODENAME"]].insert(vars["CUDA_VISIBLE_DEVICES"]);
    EXPECT_TRUE(fs::exists(results / ("rank-" + job + "-" + std::to_string(t) + ".out")));
  }
  // --gpus-per-task=1: the two tasks of each node got different GPUs.
  ASSERT_EQ(gpus_by_node.size(), 4u);
  for (const auto& [node, gpus] : gpus_by_node) EXPECT_EQ(gpus, (std::set<std::string>{"0", "1"})) << node;

  // The gathered report and the summary in the job's output file.
  auto report = nlohmann::json::parse(read_file(results / "env-dump.json"));
  ASSERT_EQ(report["ranks"].size(), 8u);
  EXPECT_EQ(report["job"]["ntasks_per_node"], 2);
  EXPECT_EQ(report["job"]["job_kind"], "batch");
  EXPECT_TRUE(report["job"]["launched_by_srun"].get<bool>());
  EXPECT_EQ(report["job"]["nodes"], nlohmann::json({"node1", "node2", "node3", "node4"}));
  EXPECT_TRUE(report["diagnostics"].empty()) << report["diagnostics"].dump(2);
  for (int t = 0; t < 8; ++t) {
    const auto& rank = report["ranks"][static_cast<std::size_t>(t)];
    EXPECT_EQ(rank["rank"], t);
    EXPECT_EQ(rank["node"], "node" + std::to_string(t / 2 + 1));
    EXPECT_EQ(rank["local_rank"], t % 2);
    EXPECT_EQ(rank["node_index"], t / 2);
    EXPECT_EQ(rank["device"], "cpu (planned cuda:0, none answered)");  // one fake GPU each
  }
  auto output = read_file(kWorkDir / ("env-dump-" + job + ".out"));
  EXPECT_NE(output.find("Slurm job " + job + " \"env-dump\" (batch, srun step"), std::string::npos) << output;
  EXPECT_NE(output.find("SLURM_NTASKS_PER_NODE=2: set because the job asked for --ntasks-per-node."), std::string::npos)
      << output;
  EXPECT_NE(output.find("node[1-4]"), std::string::npos) << output;
  EXPECT_NE(output.find("Diagnostics: none"), std::string::npos) << output;
  for (int t = 0; t < 8; ++t)
    EXPECT_TRUE(std::regex_search(output, std::regex("\n" + std::to_string(t) + " +node" + std::to_string(t / 2 + 1) + " ")))
        << "table row " << t << " missing in:\n" << output;
  EXPECT_TRUE(fs::exists(results / "metrics.h5"));
}

TEST(EnvDumpSlurm, NtasksWithoutNtasksPerNodeIsFlagged) {
  // The same template without its --ntasks-per-node line, submitted with --ntasks 8.
  auto original = read_file(kSource / "jobs/env-dump.sbatch");
  auto variant = std::regex_replace(original, std::regex("#SBATCH --ntasks-per-node=2\n"), "");
  ASSERT_NE(variant, original) << "the template no longer has '#SBATCH --ntasks-per-node=2'";
  auto script = kWorkDir / "env-dump-ntasks-only.sbatch";
  std::ofstream(script) << variant;

  const auto job = submit_and_wait("--ntasks 8 " + script.string(), "env-dump");
  ASSERT_FALSE(job.empty());
  const auto results = kWorkDir / ("env-dump-" + job);
  for (int t = 0; t < 8; ++t) {
    auto vars = read_env_file(results / ("env-" + job + "-" + std::to_string(t) + ".txt"));
    EXPECT_EQ(vars["SLURM_PROCID"], std::to_string(t));
    EXPECT_FALSE(vars.count("SLURM_NTASKS_PER_NODE")) << "task " << t;
  }
  auto report = nlohmann::json::parse(read_file(results / "env-dump.json"));
  EXPECT_TRUE(report["job"]["ntasks_per_node"].is_null());
  std::set<std::string> codes;
  for (const auto& d : report["diagnostics"]) codes.insert(d["code"].get<std::string>());
  EXPECT_TRUE(codes.count("ntasks-per-node-missing")) << report["diagnostics"].dump(2);
  auto output = read_file(kWorkDir / ("env-dump-" + job + ".out"));
  EXPECT_NE(output.find("SLURM_NTASKS_PER_NODE is not set: Slurm defines it only when --ntasks-per-node is given"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("HINT: ask for --nodes=4 --ntasks-per-node=<GPUs per node>"), std::string::npos) << output;
}

TEST(EnvDumpSlurm, RunningInTheBatchScriptWithoutSrunIsFlagged) {
  auto results = kWorkDir / "no-srun";
  auto submitted = client("sbatch --parsable --job-name=no-srun -N2 --output=no-srun-%j.out --wrap '" +
                          (kBinary / "bin/env-dump").string() + " --output-dir " + results.string() + "'");
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  auto job = submitted.output.substr(0, submitted.output.find_first_not_of("0123456789"));
  auto waited = client(kCluster + " wait " + job + " --timeout 120", 180);
  ASSERT_EQ(waited.exit_code, 0) << waited.output << read_file(kWorkDir / ("no-srun-" + job + ".out"));
  auto report = nlohmann::json::parse(read_file(results / "env-dump.json"));
  ASSERT_EQ(report["ranks"].size(), 1u);
  EXPECT_FALSE(report["job"]["launched_by_srun"].get<bool>());
  ASSERT_FALSE(report["diagnostics"].empty());
  EXPECT_EQ(report["diagnostics"][0]["code"], "not-launched-by-srun") << report["diagnostics"].dump(2);
}
