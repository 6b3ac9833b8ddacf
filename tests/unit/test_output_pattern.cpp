#include <gtest/gtest.h>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/io/output_pattern.hpp"

using slurmlab::io::expand_output_pattern;
using slurmlab::io::PatternContext;

namespace {
PatternContext job_context() {
  PatternContext c;
  c.job_id = "4242";
  c.step_id = "0";
  c.job_name = "env-dump";
  c.user = "ada";
  c.node_name = "node3";
  c.task_id = 7;
  c.node_id = 2;
  return c;
}
}  // namespace

TEST(OutputPattern, EverySrunSymbol) {
  const auto c = job_context();
  EXPECT_EQ(expand_output_pattern("env-%j-%t.txt", c), "env-4242-7.txt");
  EXPECT_EQ(expand_output_pattern("%J", c), "4242.0");
  EXPECT_EQ(expand_output_pattern("%s", c), "0");
  EXPECT_EQ(expand_output_pattern("%n/%N", c), "2/node3");
  EXPECT_EQ(expand_output_pattern("%x-%u", c), "env-dump-ada");
  EXPECT_EQ(expand_output_pattern("100%%", c), "100%");
}

TEST(OutputPattern, WidthZeroPadsNumbersOnly) {
  const auto c = job_context();
  EXPECT_EQ(expand_output_pattern("%3t", c), "007");
  EXPECT_EQ(expand_output_pattern("%10j", c), "0000004242");
  EXPECT_EQ(expand_output_pattern("%12j", c), "0000004242");  // srun caps the width at 10
  EXPECT_EQ(expand_output_pattern("%5N", c), "node3");        // names are never padded
  EXPECT_EQ(expand_output_pattern("%2n", c), "02");
}

TEST(OutputPattern, ArraySymbols) {
  auto c = job_context();
  EXPECT_EQ(expand_output_pattern("%A_%a", c), "4242_0");  // not an array job: the job id stands in
  c.array_job_id = "4240";
  c.array_task_id = "3";
  EXPECT_EQ(expand_output_pattern("%A_%3a", c), "4240_003");
}

TEST(OutputPattern, OutsideSlurmNamesStayReadable) {
  PatternContext c;
  c.task_id = 1;
  EXPECT_EQ(expand_output_pattern("env-%j-%t.txt", c), "env-local-1.txt");
  EXPECT_EQ(expand_output_pattern("%J", c), "local");
}

TEST(OutputPattern, DoubleBackslashTurnsProcessingOff) {
  EXPECT_EQ(expand_output_pattern("\\\\out-%j.txt", job_context()), "out-%j.txt");
}

TEST(OutputPattern, UnknownSymbolsAreUsageErrors) {
  EXPECT_THROW(expand_output_pattern("out-%q", job_context()), slurmlab::UsageError);
  EXPECT_THROW(expand_output_pattern("out-%", job_context()), slurmlab::UsageError);
  EXPECT_THROW(expand_output_pattern("out-%3", job_context()), slurmlab::UsageError);
}

TEST(PerRankFileName, ExpandsAndRefusesNoNameADirectoryOrOneFileForAllRanks) {
  using slurmlab::io::per_rank_file_name;
  EXPECT_EQ(per_rank_file_name("--env-file-pattern", "env-%j-%t.txt", job_context(), 4, "env-%j-%t.txt"),
            "env-4242-7.txt");
  // One rank may use a fixed name; with more, the rank must be in it.
  EXPECT_EQ(per_rank_file_name("--env-file-pattern", "env.txt", job_context(), 1, "env-%j-%t.txt"), "env.txt");
  const auto message = [](const std::string& pattern, int ranks) {
    try {
      (void)per_rank_file_name("--env-file-pattern", pattern, job_context(), ranks, "env-%j-%t.txt");
    } catch (const slurmlab::UsageError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(message("", 4), "--env-file-pattern is empty; give one such as --env-file-pattern 'env-%j-%t.txt'.");
  EXPECT_EQ(message(".", 1), "--env-file-pattern '.' gives no file name; give one such as 'env-%j-%t.txt'.");
  EXPECT_EQ(message("o%j/x-%t", 4),
            "--env-file-pattern 'o%j/x-%t' names a directory; give a file name and choose the directory with "
            "--output-dir.");
  EXPECT_EQ(message("env-%N.txt", 4),
            "--env-file-pattern 'env-%N.txt' gives all 4 ranks the same file; put %t (the rank) in it, as in "
            "'env-%j-%t.txt'.");
}
