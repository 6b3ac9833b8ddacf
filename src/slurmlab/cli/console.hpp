#pragma once
// Rank-0 output. Only rank 0 speaks to the user; other ranks' lines go to their own
// per-rank logs (srun --output=...-%t.out).
#include <iostream>
#include <string_view>

namespace slurmlab::cli {

class Console {
 public:
  explicit Console(bool is_root) : is_root_(is_root) {}
  // Prints a line on rank 0 (flushed: Slurm output files are read while a job runs).
  void line(std::string_view text) const;
  bool is_root() const { return is_root_; }
  // True when stdout is a terminal (progress bars) rather than a Slurm output file; false
  // under mpirun, whose pseudo-terminal hides where the output really goes.
  static bool stdout_is_terminal();

 private:
  bool is_root_;
};

}  // namespace slurmlab::cli
