#include "slurmlab/cli/console.hpp"

#include <unistd.h>

#include <cstdlib>

namespace slurmlab::cli {

void Console::line(std::string_view text) const {
  if (!is_root_) return;
  std::cout << text << '\n' << std::flush;
}

bool Console::stdout_is_terminal() {
  // mpirun hands its ranks a pseudo-terminal for stdout whatever its own stdout is (often a
  // batch job's output file), so under mpirun a tty says nothing: assume a log file.
  const bool under_mpirun = std::getenv("OMPI_MCA_orte_hnp_uri") != nullptr || std::getenv("PRTE_LAUNCHED") != nullptr;
  return !under_mpirun && ::isatty(STDOUT_FILENO) == 1;
}

}  // namespace slurmlab::cli
