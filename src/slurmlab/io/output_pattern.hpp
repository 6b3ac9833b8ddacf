#pragma once
// Per-rank file names from srun-style patterns (srun(1), "filename pattern"):
//   %j job id   %J job id.step id   %s step id   %t task id (rank)   %n node id in the job
//   %N short host name   %x job name   %u user   %A array master job id   %a array index   %% a '%'
// A width between '%' and the letter zero-pads numbers: %3t -> 007 (at most 10 digits, as
// srun caps it). A pattern starting with "\\" is taken literally (srun: "do not process").
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace slurmlab::io {

struct PatternContext {
  std::string job_id = "local";  // outside Slurm: "local", so names stay readable
  std::optional<std::string> step_id;
  std::string job_name;
  std::string user;
  std::string node_name;
  std::optional<std::string> array_job_id;
  std::optional<std::string> array_task_id;
  std::int64_t task_id = 0;
  std::int64_t node_id = 0;
};

// Throws slurmlab::UsageError naming the pattern on an unknown '%' sequence or a
// trailing '%'.
std::string expand_output_pattern(std::string_view pattern, const PatternContext& context);

// This rank's file name from the per-rank pattern of `option` ("--log-pattern"): the expansion,
// which must be a plain file name (the directory is --output-dir's) and, with more than one
// rank, differ between ranks. Throws UsageError naming the option and the fix, with `example`
// ("rank-%t.log") as a pattern that works, when the pattern is empty, expands to nothing, "."
// or "..", names a directory, or gives every rank the same file.
std::string per_rank_file_name(std::string_view option, std::string_view pattern, const PatternContext& context,
                               int ranks, std::string_view example);

}  // namespace slurmlab::io
