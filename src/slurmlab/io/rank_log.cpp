#include "slurmlab/io/rank_log.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "slurmlab/core/errors.hpp"

namespace slurmlab::io {

RankLog RankLog::open(const std::filesystem::path& output_dir, std::string_view pattern, const PatternContext& context,
                      int ranks) {
  const std::string name = per_rank_file_name("--log-pattern", pattern, context, ranks, "rank-%t.log");
  RankLog log;
  log.path_ = output_dir / name;
  log.file_.reset(std::fopen(log.path_.c_str(), "w"));
  if (!log.file_) throw std::runtime_error("cannot open the rank log '" + log.path_.string() + "': " + std::strerror(errno));
  return log;
}

void RankLog::line(std::string_view text) {
  if (!file_) return;
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  const std::size_t length = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  std::fprintf(file_.get(), "%.*s.%03dZ %.*s\n", static_cast<int>(length), stamp, static_cast<int>(millis),
               static_cast<int>(text.size()), text.data());
  std::fflush(file_.get());
}

}  // namespace slurmlab::io
