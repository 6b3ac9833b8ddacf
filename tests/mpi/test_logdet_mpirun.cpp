// logdet-histogram under mpirun: the same samples whatever the split (1 rank vs 3 ranks,
// bit for bit on the CPU), and one-line usage errors with exit status 2.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <tuple>

#include "../support/process.hpp"

namespace fs = std::filesystem;
using namespace slurmlab::testing;

namespace {

const std::string kProgram = SLURMLAB_BINARY_DIR "/bin/logdet-histogram";



// A 1-D dataset read through the HDF5 C API, independently of the writer.
template <class T>
std::vector<T> read_column(const fs::path& file, const std::string& dataset) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  EXPECT_GE(f, 0) << file;
  if (f < 0) return {};
  const hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  EXPECT_GE(d, 0) << dataset;
  std::vector<T> values;
  if (d >= 0) {
    const hid_t space = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(space, &n, nullptr);
    values.resize(n);
    const hid_t type = std::is_same_v<T, double> ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64;
    EXPECT_GE(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
    H5Sclose(space);
    H5Dclose(d);
  }
  H5Fclose(f);
  return values;
}

CommandResult run(int ranks, const fs::path& dir, const std::string& flags) {
  return run_command(mpirun(ranks) + kProgram + " --device cpu --threads 1 --output-dir " + dir.string() + " " + flags,
                     240);
}

}  // namespace

TEST(LogdetMpirun, OneRankAndThreeRanksGiveBitIdenticalSamples) {
  const std::string flags = "--dim 40 --eta 1.5 --samples 31 --seed 77";
  const auto one = fresh_dir("logdet-np1"), three = fresh_dir("logdet-np3");
  auto r1 = run(1, one, flags);
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  auto r3 = run(3, three, flags);
  ASSERT_EQ(r3.exit_code, 0) << r3.output;
  EXPECT_NE(r3.output.find("3 rank(s)"), std::string::npos) << r3.output;
  // Rank 0's progress in batch-log form (mpirun gives ranks a pseudo-terminal, but its own
  // output is a pipe here, as a Slurm output file would be): rank 0's 10 of the 31 samples,
  // the rate, and no carriage return.
  EXPECT_NE(r3.output.find("[rank 0] 10/10 matrix (100.0%)"), std::string::npos) << r3.output;
  EXPECT_NE(r3.output.find("matrix/s"), std::string::npos) << r3.output;
  EXPECT_EQ(r3.output.find('\r'), std::string::npos) << r3.output;

  const auto index1 = read_column<std::int64_t>(one / "metrics.h5", "samples/index");
  const auto index3 = read_column<std::int64_t>(three / "metrics.h5", "samples/index");
  ASSERT_EQ(index1.size(), 31u);
  EXPECT_EQ(index1, index3);
  for (std::size_t k = 0; k < index1.size(); ++k) EXPECT_EQ(index1[k], static_cast<std::int64_t>(k));
  const auto ranks = read_column<std::int64_t>(three / "metrics.h5", "samples/rank");
  EXPECT_EQ(ranks.front(), 0);
  EXPECT_EQ(ranks[15], 1);
  EXPECT_EQ(ranks.back(), 2);

  for (const char* column : {"samples/log_det", "samples/log_det_factor"}) {
    const auto a = read_column<double>(one / "metrics.h5", column);
    const auto b = read_column<double>(three / "metrics.h5", column);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t k = 0; k < a.size(); ++k) {
      EXPECT_TRUE(std::isfinite(a[k]));
      EXPECT_EQ(std::memcmp(&a[k], &b[k], sizeof(double)), 0) << column << " sample " << k << ": " << a[k] << " vs " << b[k];
    }
  }
  EXPECT_EQ(read_column<double>(one / "metrics.h5", "histogram/counts"),
            read_column<double>(three / "metrics.h5", "histogram/counts"));
  EXPECT_TRUE(fs::exists(three / "histogram.png"));
  EXPECT_TRUE(fs::exists(three / "summary.txt"));
  // Every rank's own log: who it is, its samples, its last sample's value, its rate.
  const auto last = read_column<double>(three / "metrics.h5", "samples/log_det");
  for (const auto& [rank, first, end] : {std::tuple{0, 0, 10}, std::tuple{1, 10, 20}, std::tuple{2, 20, 31}}) {
    const auto log = read_file(three / ("rank-" + std::to_string(rank) + ".log"));
    EXPECT_NE(log.find("Z logdet-histogram: rank " + std::to_string(rank) + " of 3, node "), std::string::npos) << log;
    EXPECT_NE(log.find("samples " + std::to_string(first) + ".." + std::to_string(end - 1) + " of 31"),
              std::string::npos)
        << log;
    std::ostringstream value;
    value.precision(6);
    value << "sample " << end - 1 << ": log det " << last[static_cast<std::size_t>(end - 1)];
    EXPECT_NE(log.find(value.str()), std::string::npos) << value.str() << " in\n" << log;
    EXPECT_NE(log.find("done: " + std::to_string(end - first) + " samples in "), std::string::npos) << log;
  }
  // A different seed gives different matrices.
  const auto other = fresh_dir("logdet-np1-seed");
  ASSERT_EQ(run(1, other, "--dim 40 --eta 1.5 --samples 31 --seed 78").exit_code, 0);
  EXPECT_NE(read_column<double>(other / "metrics.h5", "samples/log_det"),
            read_column<double>(one / "metrics.h5", "samples/log_det"));
}

TEST(LogdetMpirun, BadInputIsOneLineAndExitTwo) {
  const auto dir = fresh_dir("logdet-bad");
  for (const std::string flags : {"--dim 1", "--eta 0", "--eta -1", "--samples 0", "--bins 0", "--range 5,1"}) {
    // Under mpirun (2 ranks): exit 2 and the message once (mpirun adds its own banner).
    const auto result = run(2, dir, flags);
    EXPECT_EQ(result.exit_code, 2) << flags << "\n" << result.output;
    EXPECT_EQ(count_occurrences(result.output, "logdet-histogram: error:"), 1) << flags << "\n" << result.output;
    // Alone (singleton MPI): exactly one line.
    const auto alone = run_command(kProgram + " --output-dir " + dir.string() + " " + flags, 60);
    EXPECT_EQ(alone.exit_code, 2) << flags << "\n" << alone.output;
    EXPECT_EQ(count_occurrences(alone.output, "\n"), 1) << "one line: " << flags << "\n" << alone.output;
  }
  EXPECT_FALSE(fs::exists(dir / "metrics.h5"));

  // A value the option parser refuses: the one-line error, then the usage text.
  const auto negative_seed = run_command(kProgram + " --output-dir " + dir.string() + " --seed -1", 60);
  EXPECT_EQ(negative_seed.exit_code, 2) << negative_seed.output;
  EXPECT_TRUE(negative_seed.output.starts_with(
      "logdet-histogram: error: --seed '-1' is not a whole number from 0 to 18446744073709551615; give one such as "
      "--seed 42.\nUsage: logdet-histogram"))
      << negative_seed.output;

  // More memory than the machine has: refused up front, not std::bad_alloc (or the OOM killer).
  const auto huge = run_command(kProgram + " --output-dir " + dir.string() + " --dim 300000 --samples 1", 60);
  EXPECT_EQ(huge.exit_code, 2) << huge.output;
  EXPECT_EQ(count_occurrences(huge.output, "\n"), 1) << huge.output;
  EXPECT_NE(huge.output.find("logdet-histogram: error: --dim 300000 needs 1341 GiB of memory per rank"),
            std::string::npos)
      << huge.output;

  // An output directory that cannot be made is a usage problem too: one line, status 2.
  const auto unwritable = run_command(kProgram + " --dim 4 --samples 2 --output-dir /proc/slurmlab-cannot", 60);
  EXPECT_EQ(unwritable.exit_code, 2) << unwritable.output;
  EXPECT_EQ(count_occurrences(unwritable.output, "\n"), 1) << unwritable.output;
  EXPECT_NE(unwritable.output.find("--output-dir '/proc/slurmlab-cannot' cannot be used"), std::string::npos)
      << unwritable.output;
}
