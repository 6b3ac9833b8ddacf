#include "slurmlab/cli/console.hpp"

#include <unistd.h>

namespace slurmlab::cli {

void Console::line(std::string_view text) const {
  if (!is_root_) return;
  std::cout << text << '\n' << std::flush;
}

bool Console::stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

}  // namespace slurmlab::cli
