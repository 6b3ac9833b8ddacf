#pragma once
// The local Slurm the slurm-label tests share: started once per test binary (a global
// test environment) under the build directory, on its own ports, and stopped at the end.
// Each job's test file submits its real template from jobs/ through these helpers.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "../support/process.hpp"

namespace slurmlab::testing {

extern const std::filesystem::path kSource;
extern const std::filesystem::path kBinary;
// Where jobs are submitted from and write their results (SLURMLAB_OUTPUT).
extern const std::filesystem::path kWorkDir;
// "tools/local-slurm --dir ..." for this test cluster.
extern const std::string kCluster;
// Runs a client command against the test cluster, from kWorkDir.
CommandResult client(const std::string& command, int timeout = 60);
// sbatch --parsable ARGS (with SLURMLAB_BIN and SLURMLAB_OUTPUT set), then waits for the
// job to end; expects COMPLETED and returns the job id ("" on failure). `output_name`
// is the job's --output file name pattern prefix for the failure report.
std::string submit_and_wait(const std::string& sbatch_arguments, const std::string& output_prefix,
                            int timeout_seconds = 240);

}  // namespace slurmlab::testing

