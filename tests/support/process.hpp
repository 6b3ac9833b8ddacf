#pragma once
// Runs a shell command for the driver tests (mpi, slurm): output and exit status, with a
// hard time limit so a hanging job fails the test instead of the whole CI run.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace slurmlab::testing {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
  bool timed_out() const { return exit_code == 124 || exit_code == 137; }
};

inline std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// In a sanitizer build the programs a test launches are MPI programs whose Open MPI keeps
// allocations until exit (many in components it has already unloaded, so LeakSanitizer
// cannot even name them). Leaks are checked in the test's own process; the launched
// programs keep their address and UB checks.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr const char* kChildSanitizerEnv = "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 ";
#else
inline constexpr const char* kChildSanitizerEnv = "";
#endif

inline CommandResult run_command(const std::string& command, int timeout_seconds) {
  const std::string wrapped = std::string(kChildSanitizerEnv) + "timeout --kill-after=10 " +
                              std::to_string(timeout_seconds) + " sh -c " + shell_quote(command) + " 2>&1";
  CommandResult result;
  FILE* pipe = ::popen(wrapped.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// NAME=value lines (env-dump's per-rank files) as a map.
inline std::map<std::string, std::string> read_env_file(const std::filesystem::path& path) {
  std::map<std::string, std::string> vars;
  std::istringstream lines(read_file(path));
  std::string line;
  while (std::getline(lines, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) vars[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return vars;
}

inline int count_occurrences(const std::string& text, const std::string& needle) {
  int count = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + needle.size())) ++count;
  return count;
}

// "mpirun -np N " for the mpi-label driver tests: oversubscribed (2 cores here), no core
// binding, and allowed for root (CI runs as root).
inline std::string mpirun(int ranks) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 "
         "mpirun --bind-to none -np " +
         std::to_string(ranks) + " ";
}

#ifdef SLURMLAB_BINARY_DIR
// An empty directory under the build tree (kept after the test for a person to look at).
inline std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::path(SLURMLAB_BINARY_DIR) / "test-output" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}
#endif

}  // namespace slurmlab::testing
