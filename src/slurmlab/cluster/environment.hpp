#pragma once
// A snapshot of the process environment. The library reads Slurm, MPI and CUDA
// variables only through this type, so every decision is testable from a table.
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace slurmlab::cluster {

class Environment {
 public:
  Environment() = default;
  explicit Environment(const std::map<std::string, std::string>& variables)
      : variables_(variables.begin(), variables.end()) {}

  // The environment of this process (environ), taken once.
  static Environment from_process();

  std::optional<std::string> get(std::string_view name) const;
  bool has(std::string_view name) const { return variables_.find(name) != variables_.end(); }
  // Sorted by name: std::map keeps the order env-dump writes.
  const std::map<std::string, std::string, std::less<>>& variables() const { return variables_; }

 private:
  std::map<std::string, std::string, std::less<>> variables_;
};

}  // namespace slurmlab::cluster
