#pragma once
// Facts about the running process.
#include <optional>

namespace slurmlab {

// Seconds since this process was started by the kernel (exec, before any library was loaded),
// from /proc/self/stat and CLOCK_BOOTTIME; resolution one clock tick (10 ms on Linux).
// Nothing where /proc is not mounted.
std::optional<double> process_age_seconds();

}  // namespace slurmlab
