#pragma once
// The kinds of failure every slurmlab program distinguishes.
#include <stdexcept>
#include <string>

namespace slurmlab {

// Exit status for usage errors, as in the contract (and as getopt-style tools do).
inline constexpr int kUsageExitCode = 2;

// The user asked for something that cannot work (bad flag, bad value, missing file,
// impossible job layout). The message is one sentence naming the problem and the fix;
// programs print it (plus `details`, e.g. the usage text) and exit with status 2.
class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& message, std::string details = {})
      : std::runtime_error(message), details_(std::move(details)) {}
  const std::string& details() const { return details_; }

 private:
  std::string details_;
};

// Thrown on every rank to end the program with `code` after MPI is finalized
// (--help, --print-config, or a failure every rank agreed on).
class ProgramExit : public std::exception {
 public:
  explicit ProgramExit(int code) : code_(code) {}
  int code() const { return code_; }
  const char* what() const noexcept override { return "program exit"; }

 private:
  int code_;
};

}  // namespace slurmlab
