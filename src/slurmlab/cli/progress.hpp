#pragma once
// Progress of a long loop, as rank 0 reports it.
//
// On a terminal: one bar redrawn in place with a carriage return (at most every
// redraw_interval), with count, percentage, rate, elapsed time and ETA.
// In a batch log (stdout is a Slurm output file, not a terminal): one full line every
// `interval` with the same facts, and never a carriage return, so `tail -f job-123.out`
// and the file itself stay readable:
//   [train] 1200/5000 batch (24.0%)  40.0 batch/s  elapsed 0:30  ETA 1:35  loss 0.4123
// Only rank 0 reports: construct with enabled = console.is_root() (other ranks' reporters
// are silent and cost a branch per call).
#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>

namespace slurmlab::cli {

class Progress {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  struct Options {
    std::string label = "progress";  // shown in brackets: "[epoch 3/10]"
    std::string unit = "it";         // what is counted: "batch", "sample", "matrix"
    bool enabled = true;             // pass console.is_root()
    // Terminal bar (true) or batch-log lines (false); default: whether stdout is a terminal.
    bool terminal = default_terminal();
    std::chrono::milliseconds interval{10000};       // batch-log mode: one line per interval
    std::chrono::milliseconds redraw_interval{100};  // terminal mode: at most one redraw per this
    int bar_width = 28;
    std::ostream* out = nullptr;  // default std::cout
    Clock clock;                  // default std::chrono::steady_clock::now (tests inject one)
  };

  // `total` <= 0: unknown (no percentage, bar or ETA, only count and rate).
  Progress(std::int64_t total, Options options);
  explicit Progress(std::int64_t total) : Progress(total, Options{}) {}

  // Sets the number done so far; `extra` (e.g. "loss 0.4123") is appended to the report.
  void update(std::int64_t done, std::string_view extra = {});
  void advance(std::int64_t count = 1, std::string_view extra = {}) { update(done_ + count, extra); }
  // The final report (always printed when enabled, with the total time); ends the line on a
  // terminal. Idempotent; the destructor does not call it (an exception in flight should
  // not print "done").
  void finish(std::string_view extra = {});

  // The report as it would be printed now, without the carriage return.
  std::string report(std::string_view extra = {}) const;
  std::int64_t done() const { return done_; }

  // "0:07", "12:34", "1:02:03"; "--:--" when not finite or negative.
  static std::string format_duration(double seconds);
  static bool default_terminal();

 private:
  void emit(std::string_view extra, bool final_report);
  double elapsed_seconds() const;

  std::int64_t total_;
  Options options_;
  std::ostream* out_;
  std::chrono::steady_clock::time_point start_, last_emit_;
  std::int64_t done_ = 0;
  std::size_t last_width_ = 0;  // terminal: characters to blank when the line shrinks
  bool finished_ = false;
};

}  // namespace slurmlab::cli
