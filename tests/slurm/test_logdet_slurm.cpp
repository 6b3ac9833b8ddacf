// Label slurm: the real jobs/logdet-histogram.sbatch (one node, one task per GPU) and
// jobs/logdet-histogram-multinode.sbatch on the local Slurm. Its GPUs are fake, so both
// take the CPU fallback with the small default dimension, as their comments say; the
// two jobs split the same samples differently and must agree exactly.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "local_slurm.hpp"

namespace fs = std::filesystem;
using namespace slurmlab::testing;

namespace {

struct LogdetJob {
  std::string id;
  fs::path results;
  std::string output;  // the job's own .out file
};

LogdetJob run_job(const std::string& script, const std::string& name) {
  LogdetJob job;
  job.id = submit_and_wait((kSource / "jobs" / script).string(), name, 300);
  if (job.id.empty()) return job;
  job.results = kWorkDir / (name + "-" + job.id);
  job.output = read_file(kWorkDir / (name + "-" + job.id + ".out"));
  return job;
}

void expect_sound_results(const LogdetJob& job, int ranks) {
  EXPECT_NE(job.output.find("cpu mode"), std::string::npos) << job.output;
  EXPECT_NE(job.output.find("--dim 200 --samples 64"), std::string::npos) << job.output;
  EXPECT_NE(job.output.find("64 LKJ(eta=1) matrices of dimension 200, fp64, " + std::to_string(ranks) + " rank(s)"),
            std::string::npos)
      << job.output;
  EXPECT_NE(job.output.find("(within 4 standard errors)"), std::string::npos) << job.output;
  EXPECT_NE(job.output.find("every C was numerically positive definite"), std::string::npos) << job.output;
  // The fake GPUs do not answer: the binding says so and every rank computes on its CPU.
  EXPECT_EQ(count_occurrences(job.output, " cpu (OpenBLAS 1 threads, fp64); GPU binding: cpu (planned cuda:0"), ranks)
      << job.output;
  EXPECT_NE(job.output.find("finished"), std::string::npos);
  for (int t = 0; t < ranks; ++t)
    EXPECT_TRUE(fs::exists(job.results / ("rank-" + job.id + "-" + std::to_string(t) + ".out"))) << t;
  EXPECT_TRUE(fs::exists(job.results / "metrics.h5"));
  const auto png = read_file(job.results / "histogram.png");
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
}

std::string statistics_lines(const std::string& summary) {
  std::smatch mean, theory;
  std::regex_search(summary, mean, std::regex("sample mean [^\n]*"));
  std::regex_search(summary, theory, std::regex("KS vs [^\n]*"));
  return mean.str() + " | " + theory.str();
}

}  // namespace

TEST(LogdetSlurm, SingleNodeAndMultiNodeJobsAgree) {
  const auto single = run_job("logdet-histogram.sbatch", "logdet-histogram");
  ASSERT_FALSE(single.id.empty());
  expect_sound_results(single, 2);
  const auto multi = run_job("logdet-histogram-multinode.sbatch", "logdet-histogram-multinode");
  ASSERT_FALSE(multi.id.empty());
  expect_sound_results(multi, 4);
  // Two nodes: the ranks sit on two different nodes.
  std::smatch nodes;
  ASSERT_TRUE(std::regex_search(multi.output, nodes, std::regex("on (node\\S+), 4 tasks"))) << multi.output;
  EXPECT_NE(nodes[1].str().find('['), std::string::npos) << "two nodes expected, got " << nodes[1];
  // 2 ranks on one node vs 4 ranks on two: the same samples, so the same statistics.
  const auto a = statistics_lines(read_file(single.results / "summary.txt"));
  const auto b = statistics_lines(read_file(multi.results / "summary.txt"));
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b);
}
