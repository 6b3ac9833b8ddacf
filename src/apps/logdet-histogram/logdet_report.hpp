#pragma once
// logdet-histogram's statistics and report, separate from main() so the tests can drive
// them without MPI: option checks, Freedman-Diaconis bins, histogram, KS statistic
// against the normal approximation, the rank-0 summary, metrics.h5 and the PNG.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "slurmlab/cli/program_run.hpp"
#include "slurmlab/linalg/logdet_engine.hpp"

namespace slurmlab::logdet {

struct ProgramOptions {
  int dim = 5000;
  double eta = 1.0;
  std::int64_t samples = 100;
  std::string bins = "auto";   // "auto" (Freedman-Diaconis) or a count >= 1
  std::string range = "auto";  // "auto" (the data's) or "LO,HI"
  bool fp32 = false;
  int threads = 0;  // OpenBLAS threads per rank; 0: OpenBLAS's default
};

// The checked form of the options. Throws UsageError naming the option and the fix.
struct RunPlan {
  int dim;
  double eta;
  std::int64_t samples;
  std::optional<int> bins;                       // nullopt: Freedman-Diaconis
  std::optional<std::pair<double, double>> range;  // nullopt: the data's
  Precision precision;
  int threads;
};
// The largest --eta whose exact theory double precision still computes (see check_options).
constexpr double kMaxEta = 1e12;
RunPlan check_options(const ProgramOptions& options);

// Samples of rank r of n: the contiguous block [first, end) of sample indices.
struct SampleBlock {
  std::int64_t first;
  std::int64_t end;
};
SampleBlock sample_block(std::int64_t samples, int rank, int ranks);

// Freedman-Diaconis: width 2 IQR n^(-1/3) over the data's range, at least 1 bin and at
// most kMaxAutoBins; 1 bin when the IQR is zero.
constexpr int kMaxAutoBins = 1000;
int freedman_diaconis_bins(std::vector<double> values);

struct Histogram {
  std::vector<double> edges;   // bins + 1, increasing
  std::vector<double> counts;  // values in [edges[i], edges[i+1]); the last bin is closed
  std::int64_t outside = 0;    // values outside the range
};
Histogram make_histogram(const std::vector<double>& values, int bins, std::pair<double, double> range);

// Kolmogorov-Smirnov distance between the sample and N(mean, variance).
double ks_statistic_normal(std::vector<double> values, double mean, double variance);

// All samples of the run in index order, gathered on rank 0.
struct RunResults {
  std::vector<std::int64_t> index;
  std::vector<double> log_det, log_det_factor, sample_seconds, determinant_seconds;
  std::vector<std::int64_t> positive_definite, rank;
  double wall_seconds = 0;  // the slowest rank's sampling loop
  std::vector<std::string> rank_devices;
  std::size_t buffer_bytes_per_rank = 0;
};

struct Analysis {
  std::int64_t samples = 0;
  std::int64_t not_positive_definite = 0;
  std::int64_t valid = 0;
  double mean = 0, sd = 0;
  double theory_mean = 0, theory_variance = 0;
  double z_score = 0;  // (mean - E) / sqrt(Var / n)
  double ks = 0;       // against N(E, Var)
  double ks_critical_1pct = 0;
  double max_abs_cross_check = 0;  // max |log_det - 2 sum log L_ii| over valid samples
  double max_rel_cross_check = 0;
  double matrices_per_second = 0;  // all ranks together, wall clock
  double gflops = 0;               // determinant FLOPs / wall clock, all ranks together
  double median_determinant_seconds = 0;
  double median_sample_seconds = 0;
  Histogram histogram;
};
Analysis analyze(const RunPlan& plan, const RunResults& results);

std::string format_summary(const RunPlan& plan, const RunResults& results, const Analysis& analysis);

// metrics.h5 with every sample, the histogram, the theory and the run's metadata.
void write_metrics(const std::string& path, const cli::RunAttributes& attributes, const RunPlan& plan,
                   const RunResults& results, const Analysis& analysis);
// The histogram as a density, N(E, Var) over it, and the theoretical and sample means.
void write_histogram_png(const std::string& path, const RunPlan& plan, const Analysis& analysis);

}  // namespace slurmlab::logdet
