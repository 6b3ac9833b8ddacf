#pragma once
// Every rank's own log under the program's output dir, named by an srun-style pattern
// (--log-pattern, default "rank-%t.log"; see output_pattern.hpp): where this rank ran, on
// which device, what it did and when. Lines carry a UTC time stamp and are flushed as they
// are written, so `tail -f results/<run>/rank-3.log` follows a running job. Under mpirun,
// where no `srun --output=...-%t.out` splits the ranks' output, it is the only per-rank
// record. A log is a stream, not a result: it is written in place (results go through a
// temporary name, atomic_file.hpp).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "slurmlab/io/output_pattern.hpp"

namespace slurmlab::io {

class RankLog {
 public:
  RankLog() = default;  // closed: line() does nothing

  // Expands `pattern` for this rank and opens the file in `output_dir` (truncating it).
  // Throws UsageError when the pattern is empty, names a directory, or gives two of the job's
  // `ranks` the same file (no %t in it); std::runtime_error when the file cannot be opened.
  static RankLog open(const std::filesystem::path& output_dir, std::string_view pattern, const PatternContext& context,
                      int ranks);

  // Writes "2026-11-22T09:10:11.123Z <text>" and flushes.
  void line(std::string_view text);
  bool is_open() const { return file_ != nullptr; }
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Close {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };
  std::unique_ptr<std::FILE, Close> file_;
  std::filesystem::path path_;
};

}  // namespace slurmlab::io
