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
}

TEST(FitRegressionMpirun, UsageErrorEndsEveryRankWithExitTwo) {
  const auto dir = fresh_dir("fit-usage");
  const auto result =
      run_command("cd " + dir.string() + " && " + mpirun(2) + kProgram + " --output-dir out --val-fraction 2", 120);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_EQ(count_occurrences(result.output, "--val-fraction must lie strictly between 0 and 1"), 1) << result.output;
}
