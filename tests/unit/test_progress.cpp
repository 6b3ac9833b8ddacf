// Progress reports with an injected clock and stream: the batch-log line format, its
// interval cadence, the terminal bar, and silence on ranks other than 0.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "slurmlab/cli/progress.hpp"

using slurmlab::cli::Progress;
using namespace std::chrono_literals;

namespace {

struct FakeClock {
  std::chrono::steady_clock::time_point now{std::chrono::seconds(1000)};
  Progress::Clock function() {
    return [this] { return now; };
  }
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST(Progress, BatchLogLineCarriesCountRateElapsedAndEta) {
  FakeClock clock;
  std::ostringstream out;
  Progress::Options options;
  options.label = "train";
  options.unit = "batch";
  options.terminal = false;
  options.interval = 10s;
  options.out = &out;
  options.clock = clock.function();
  Progress progress(400, options);
  clock.now += 10s;
  progress.update(100, "loss 0.4123");
  EXPECT_EQ(out.str(), "[train] 100/400 batch (25.0%)  10.0 batch/s  elapsed 0:10  ETA 0:30  loss 0.4123\n");
  EXPECT_EQ(out.str().find('\r'), std::string::npos);

  clock.now += 30s;
  progress.update(400);
  progress.finish("done");
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1], "[train] 400/400 batch (100.0%)  10.0 batch/s  elapsed 0:40  ETA 0:00");
  EXPECT_EQ(lines[2], "[train] 400/400 batch (100.0%)  10.0 batch/s  elapsed 0:40  done");
}

TEST(Progress, BatchLogPrintsOneLinePerIntervalWhateverTheUpdateRate) {
  FakeClock clock;
  std::ostringstream out;
  Progress::Options options;
  options.terminal = false;
  options.interval = 10s;
  options.out = &out;
  options.clock = clock.function();
  Progress progress(1000, options);
  // 35 s of updates every 250 ms: lines at 10 s, 20 s and 30 s only.
  for (int i = 1; i <= 140; ++i) {
    clock.now += 250ms;
    progress.update(i);
  }
  auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 3u) << out.str();
  EXPECT_NE(lines[0].find("40/1000"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("80/1000"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("120/1000"), std::string::npos) << lines[2];
  // A pause longer than two intervals gives one line, then the cadence resumes.
  clock.now += 27s;  // t = 62 s
  progress.update(150);
  clock.now += 5s;  // t = 67 s: before the next boundary at 70 s
  progress.update(160);
  clock.now += 3s;  // t = 70 s
  progress.update(170);
  lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 5u) << out.str();
  EXPECT_NE(lines[3].find("150/1000"), std::string::npos);
  EXPECT_NE(lines[4].find("170/1000"), std::string::npos);
  EXPECT_EQ(out.str().find('\r'), std::string::npos);
}

TEST(Progress, UnknownTotalAndSlowRates) {
  FakeClock clock;
  std::ostringstream out;
  Progress::Options options;
  options.terminal = false;
  options.interval = 1s;
  options.unit = "matrix";
  options.out = &out;
  options.clock = clock.function();
  Progress progress(0, options);
  clock.now += 4s;
  progress.update(2);
  EXPECT_EQ(out.str(), "[progress] 2 matrix  2.0 s/matrix  elapsed 0:04\n");
  EXPECT_EQ(Progress::format_duration(0), "0:00");
  EXPECT_EQ(Progress::format_duration(65.4), "1:05");
  EXPECT_EQ(Progress::format_duration(3725), "1:02:05");
  EXPECT_EQ(Progress::format_duration(-1), "--:--");
  EXPECT_EQ(Progress::format_duration(NAN), "--:--");
}

TEST(Progress, TerminalBarRedrawsInPlaceAndEndsTheLine) {
  FakeClock clock;
  std::ostringstream out;
  Progress::Options options;
  options.terminal = true;
  options.bar_width = 10;
  options.out = &out;
  options.clock = clock.function();
  Progress progress(10, options);
  clock.now += 1s;
  progress.update(5, "loss 1.25");
  clock.now += 50ms;
  progress.update(6);  // within the redraw interval: nothing
  clock.now += 1s;
  progress.update(10);
  progress.finish();
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\r'), 3);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
  EXPECT_EQ(text.back(), '\n');
  EXPECT_NE(text.find("\r[progress] |#####-----| 5/10 it (50.0%)  5.0 it/s  elapsed 0:01  ETA 0:01  loss 1.25"),
            std::string::npos)
      << text;
  // The shorter line after "loss 1.25" is padded with blanks over the old text: every redraw
  // reaches at least as far as the text of the one before it.
  const auto last = text.rfind('\r'), before = text.rfind('\r', last - 1);
  const std::string final_line = text.substr(last + 1, text.size() - last - 2);  // without the '\n'
  const std::string previous_line = text.substr(before + 1, last - before - 1);
  EXPECT_NE(final_line.find("|##########| 10/10"), std::string::npos) << final_line;
  const auto previous_text = previous_line.find_last_not_of(' ') + 1;
  EXPECT_LT(final_line.find_last_not_of(' ') + 1, previous_text) << "the final line is not shorter: no padding tested";
  EXPECT_GE(final_line.size(), previous_text) << "'" << final_line << "' leaves '" << previous_line << "' showing";
}

TEST(Progress, OtherRanksAreSilent) {
  FakeClock clock;
  std::ostringstream out;
  Progress::Options options;
  options.enabled = false;
  options.terminal = false;
  options.interval = 1s;
  options.out = &out;
  options.clock = clock.function();
  Progress progress(10, options);
  clock.now += 5s;
  progress.update(5);
  progress.finish();
  EXPECT_TRUE(out.str().empty());
  EXPECT_EQ(progress.done(), 5);
}
