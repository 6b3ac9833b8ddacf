// io::RankLog: every rank's own time-stamped log, named by an srun-style pattern.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/io/rank_log.hpp"
#include "../support/process.hpp"

namespace fs = std::filesystem;
using slurmlab::UsageError;
using slurmlab::io::PatternContext;
using slurmlab::io::RankLog;

namespace {

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string usage_error(const fs::path& dir, const std::string& pattern, int ranks) {
  PatternContext context;
  context.task_id = 1;
  try {
    RankLog::open(dir, pattern, context, ranks);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(RankLog, LinesAreTimeStampedFlushedAndNamedByThePattern) {
  const auto dir = slurmlab::testing::fresh_dir("rank-log");
  PatternContext context;
  context.job_id = "4242";
  context.task_id = 7;
  auto log = RankLog::open(dir, "log-%j-%3t.txt", context, 8);
  EXPECT_EQ(log.path(), dir / "log-4242-007.txt");
  log.line("first");
  // Flushed at once: readable while the program still runs (tail -f).
  EXPECT_TRUE(std::regex_match(read(log.path()), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z first\n)")))
      << read(log.path());
  log.line("second line");
  EXPECT_TRUE(read(log.path()).ends_with("Z second line\n")) << read(log.path());
  // A new run truncates, it does not append to an old run's log.
  auto again = RankLog::open(dir, "log-%j-%3t.txt", context, 8);
  again.line("new run");
  EXPECT_EQ(read(log.path()).find("first"), std::string::npos);

  RankLog closed;  // a closed log ignores lines
  EXPECT_FALSE(closed.is_open());
  closed.line("nothing");
}

TEST(RankLog, BadPatternsAreOneSentenceWithTheFix) {
  const auto dir = slurmlab::testing::fresh_dir("rank-log-bad");
  EXPECT_EQ(usage_error(dir, "", 2), "--log-pattern is empty; give one such as --log-pattern 'rank-%t.log'.");
  EXPECT_EQ(usage_error(dir, "logs/rank-%t.log", 2),
            "--log-pattern 'logs/rank-%t.log' names a directory; give a file name and choose the directory with "
            "--output-dir.");
  EXPECT_EQ(usage_error(dir, "job-%j.log", 4),
            "--log-pattern 'job-%j.log' gives all 4 ranks the same file; put %t (the rank) in it, as in "
            "'rank-%t.log'.");
  EXPECT_EQ(usage_error(dir, "job-%j.log", 1), "") << "one rank may use any name";
  EXPECT_NE(usage_error(dir, "rank-%q.log", 2).find("%q"), std::string::npos);
  EXPECT_THROW(RankLog::open(dir / "missing-dir", "rank-%t.log", PatternContext{}, 1), std::runtime_error);
}
