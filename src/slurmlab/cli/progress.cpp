#include "slurmlab/cli/progress.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "slurmlab/cli/console.hpp"

namespace slurmlab::cli {

bool Progress::default_terminal() {
  return Console::stdout_is_terminal();
}

Progress::Progress(std::int64_t total, Options options)
    : total_(total), options_(std::move(options)), out_(options_.out ? options_.out : &std::cout) {
  if (!options_.clock) options_.clock = [] { return std::chrono::steady_clock::now(); };
  start_ = last_emit_ = options_.clock();
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(options_.clock() - start_).count();
}

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<long long>(std::llround(seconds));
  char buffer[48];
  if (s >= 3600) {
    std::snprintf(buffer, sizeof buffer, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buffer, sizeof buffer, "%lld:%02lld", s / 60, s % 60);
  }
  return buffer;
}

std::string Progress::report(std::string_view extra) const {
  const double elapsed = elapsed_seconds();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const std::string& unit = options_.unit;
  std::string line = "[" + options_.label + "] ";
  char buffer[96];
  if (options_.terminal && total_ > 0) {
    const double fraction = std::clamp(static_cast<double>(done_) / static_cast<double>(total_), 0.0, 1.0);
    const int filled = static_cast<int>(fraction * options_.bar_width);
    line += "|" + std::string(static_cast<std::size_t>(filled), '#') +
            std::string(static_cast<std::size_t>(options_.bar_width - filled), '-') + "| ";
  }
  if (total_ > 0) {
    std::snprintf(buffer, sizeof buffer, "%lld/%lld %s (%.1f%%)", static_cast<long long>(done_),
                  static_cast<long long>(total_), unit.c_str(),
                  100.0 * static_cast<double>(done_) / static_cast<double>(total_));
  } else {
    std::snprintf(buffer, sizeof buffer, "%lld %s", static_cast<long long>(done_), unit.c_str());
  }
  line += buffer;
  if (rate >= 100) {
    std::snprintf(buffer, sizeof buffer, "  %.0f %s/s", rate, unit.c_str());
  } else if (rate >= 1 || rate == 0) {
    std::snprintf(buffer, sizeof buffer, "  %.1f %s/s", rate, unit.c_str());
  } else {
    std::snprintf(buffer, sizeof buffer, "  %.1f s/%s", 1.0 / rate, unit.c_str());
  }
  line += buffer;
  line += "  elapsed " + format_duration(elapsed);
  if (total_ > 0 && !finished_) {
    const double eta = rate > 0 ? static_cast<double>(std::max<std::int64_t>(total_ - done_, 0)) / rate : NAN;
    line += "  ETA " + format_duration(eta);
  }
  if (!extra.empty()) {
    line += "  ";
    line += extra;
  }
  return line;
}

void Progress::emit(std::string_view extra, bool final_report) {
  const std::string line = report(extra);
  if (options_.terminal) {
    // Redraw in place; blank what a longer previous line left behind.
    std::string padded = line;
    if (padded.size() < last_width_) padded.append(last_width_ - padded.size(), ' ');
    last_width_ = line.size();
    *out_ << '\r' << padded;
    if (final_report) *out_ << '\n';
  } else {
    *out_ << line << '\n';
  }
  out_->flush();
}

void Progress::update(std::int64_t done, std::string_view extra) {
  done_ = done;
  if (!options_.enabled || finished_) return;
  const auto now = options_.clock();
  const auto due = options_.terminal ? options_.redraw_interval : options_.interval;
  if (now - last_emit_ < due) return;
  // Batch mode keeps a steady cadence (lines at start + k*interval) even when updates come
  // irregularly; a terminal redraws from now.
  if (options_.terminal) {
    last_emit_ = now;
  } else {
    while (now - last_emit_ >= options_.interval) last_emit_ += options_.interval;
  }
  emit(extra, false);
}

void Progress::finish(std::string_view extra) {
  if (finished_) return;
  finished_ = true;
  if (!options_.enabled) return;
  emit(extra, true);
}

}  // namespace slurmlab::cli
