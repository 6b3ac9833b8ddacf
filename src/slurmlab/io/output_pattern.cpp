#include "slurmlab/io/output_pattern.hpp"

#include <algorithm>
#include <cctype>

#include "slurmlab/core/errors.hpp"

namespace slurmlab::io {
namespace {

bool is_number(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// Zero padding applies to numbers only; names are never padded (srun does the same).
std::string padded(std::string value, int width) {
  if (width > 0 && is_number(value) && static_cast<int>(value.size()) < width)
    value.insert(0, static_cast<std::size_t>(width) - value.size(), '0');
  return value;
}

}  // namespace

std::string expand_output_pattern(std::string_view pattern, const PatternContext& context) {
  if (pattern.starts_with("\\\\")) return std::string(pattern.substr(2));
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '%') {
      out += pattern[i];
      continue;
    }
    std::size_t j = i + 1;
    int width = 0;
    while (j < pattern.size() && std::isdigit(static_cast<unsigned char>(pattern[j]))) width = width * 10 + (pattern[j++] - '0');
    width = std::min(width, 10);
    if (j >= pattern.size())
      throw UsageError("output pattern '" + std::string(pattern) + "' ends with a lone '%'; write %% for a literal '%'.");
    const std::string job = context.job_id;
    const std::string step = context.step_id.value_or("");
    switch (pattern[j]) {
      case '%': out += '%'; break;
      case 'j': out += padded(job, width); break;
      case 'J': out += padded(job, width) + (step.empty() ? "" : "." + step); break;
      case 's': out += padded(step.empty() ? "0" : step, width); break;
      case 't': out += padded(std::to_string(context.task_id), width); break;
      case 'n': out += padded(std::to_string(context.node_id), width); break;
      case 'N': out += context.node_name; break;
      case 'x': out += context.job_name; break;
      case 'u': out += context.user; break;
      // Outside a job array, Slurm names the array master by the job id itself.
      case 'A': out += padded(context.array_job_id.value_or(job), width); break;
      case 'a': out += padded(context.array_task_id.value_or("0"), width); break;
      default:
        throw UsageError("output pattern '" + std::string(pattern) + "' has an unknown '%" + pattern[j] +
                         "'; use %j %J %s %t %n %N %x %u %A %a or %%.");
    }
    i = j;
  }
  return out;
}

std::string per_rank_file_name(std::string_view option, std::string_view pattern, const PatternContext& context,
                               int ranks, std::string_view example) {
  const std::string given(pattern), flag(option), fix(example);
  if (given.empty()) throw UsageError(flag + " is empty; give one such as " + flag + " '" + fix + "'.");
  const std::string name = expand_output_pattern(pattern, context);
  if (name.empty() || name == "." || name == "..") {
    throw UsageError(flag + " '" + given + "' gives no file name; give one such as '" + fix + "'.");
  }
  if (name.find('/') != std::string::npos) {
    throw UsageError(flag + " '" + given +
                     "' names a directory; give a file name and choose the directory with --output-dir.");
  }
  if (ranks > 1) {
    PatternContext other = context;
    other.task_id = context.task_id == 0 ? 1 : 0;
    if (expand_output_pattern(pattern, other) == name) {
      throw UsageError(flag + " '" + given + "' gives all " + std::to_string(ranks) +
                       " ranks the same file; put %t (the rank) in it, as in '" + fix + "'.");
    }
  }
  return name;
}

}  // namespace slurmlab::io
