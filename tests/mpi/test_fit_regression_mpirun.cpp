// fit-regression under mpirun: with 2 ranks rank 0 trains and the other waits; the summary
// (epochs/s aside) is the same as a singleton run's with the same seed; a usage error ends
// both ranks with exit 2 and one line.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <string>

#include "../support/process.hpp"

namespace fs = std::filesystem;
using namespace slurmlab::testing;

namespace {

const std::string kProgram = SLURMLAB_BINARY_DIR "/bin/fit-regression";



// The summary without timing columns and lines.
std::string without_timing(const std::string& summary) {
  std::string out;
  std::istringstream in(summary);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("synthetic-pantheon.dat") != std::string::npos) continue;                  // names the output dir
    line = std::regex_replace(line, std::regex("\\s+\\d+(\\s+\\(stopped early\\))?$"), "");  // epochs/s column
    out += line + "\n";
  }
  return out;
}

}  // namespace

TEST(FitRegressionMpirun, TwoRanksGiveTheSingletonAnswer) {
  const std::string flags = " --epochs 200 --hidden 4,16 --seed 7 --image-every 0";
  const auto alone_dir = fresh_dir("fit-alone");
  const auto alone = run_command("cd " + alone_dir.string() + " && " + kProgram + " --output-dir out" + flags, 120);
  ASSERT_EQ(alone.exit_code, 0) << alone.output;
  const auto two_dir = fresh_dir("fit-np2");
  const auto two =
      run_command("cd " + two_dir.string() + " && " + mpirun(2) + kProgram + " --output-dir out" + flags, 180);
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NE(two.output.find("2 ranks, but the network trains on rank 0 alone"), std::string::npos) << two.output;
  const auto a = without_timing(read_file(alone_dir / "out" / "summary.txt"));
  const auto b = without_timing(read_file(two_dir / "out" / "summary.txt"));
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  // Each rank's own log: rank 0 records the runs, rank 1 that it waited.
  const auto log0 = read_file(two_dir / "out" / "rank-0.log");
  EXPECT_NE(log0.find("Z fit-regression: rank 0 of 2, node "), std::string::npos) << log0;
  EXPECT_NE(log0.find("run hidden-4: 200 epochs, best epoch "), std::string::npos) << log0;
  EXPECT_NE(log0.find("run hidden-16: 200 epochs, best epoch "), std::string::npos) << log0;
  const auto log1 = read_file(two_dir / "out" / "rank-1.log");
  EXPECT_NE(log1.find("Z fit-regression: rank 1 of 2, node "), std::string::npos) << log1;
  EXPECT_NE(log1.find("the network trains on rank 0 alone; this rank waits for it"), std::string::npos) << log1;
  EXPECT_EQ(log1.find("run hidden-"), std::string::npos) << log1;
}

TEST(FitRegressionMpirun, UsageErrorEndsEveryRankWithExitTwo) {
  const auto dir = fresh_dir("fit-usage");
  const auto result =
      run_command("cd " + dir.string() + " && " + mpirun(2) + kProgram + " --output-dir out --val-fraction 2", 120);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_EQ(count_occurrences(result.output, "--val-fraction must lie strictly between 0 and 1"), 1) << result.output;
}
