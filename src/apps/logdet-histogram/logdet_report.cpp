#include "logdet_report.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <numbers>
#include <sstream>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/core/parse.hpp"
#include "slurmlab/io/figure.hpp"
#include "slurmlab/io/metrics_writer.hpp"
#include "slurmlab/linalg/lkj_theory.hpp"

namespace slurmlab::logdet {

namespace {

double quantile(const std::vector<double>& sorted, double q) {  // linear interpolation, as numpy
  const double position = q * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const auto above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (position - static_cast<double>(below)) * (sorted[above] - sorted[below]);
}

double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  return quantile(values, 0.5);
}

}  // namespace

RunPlan check_options(const ProgramOptions& options) {
  if (options.dim < 2)
    throw UsageError("--dim " + std::to_string(options.dim) +
                     ": the matrices need dimension at least 2; give --dim 2 or more (default 5000).");
  if (!(options.eta > 0.0) || !std::isfinite(options.eta)) {
    std::ostringstream text;
    text << "--eta " << options.eta << ": the LKJ concentration must be positive; give e.g. --eta 1 (uniform).";
    throw UsageError(text.str());
  }
  if (options.eta > kMaxEta) {
    // Measured at d = 50: the theory's mean is within 1 standard error of 200 samples at 1e12,
    // 40 standard errors off at 1e14 (digamma differences of nearly equal arguments).
    std::ostringstream text;
    text << "--eta " << options.eta << ": above " << kMaxEta
         << " the exact theory loses its digits in double precision (and C is the identity to 1e-12 anyway); "
            "give at most --eta 1e12.";
    throw UsageError(text.str());
  }
  if (options.samples < 1)
    throw UsageError("--samples " + std::to_string(options.samples) + ": give at least one sample, e.g. --samples 100.");
  if (options.threads < 0)
    throw UsageError("--threads " + std::to_string(options.threads) +
                     ": give a positive OpenBLAS thread count, or 0 for OpenBLAS's default.");
  RunPlan plan{options.dim, options.eta, options.samples, std::nullopt, std::nullopt,
               options.fp32 ? Precision::float32 : Precision::float64, options.threads};
  if (options.bins != "auto") {
    std::size_t used = 0;
    long long bins = 0;
    try {
      bins = std::stoll(options.bins, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != options.bins.size() || options.bins.empty())
      throw UsageError("--bins '" + options.bins + "' is not a count; give --bins auto (Freedman-Diaconis) or a number.");
    if (bins < 1 || bins > 1000000)
      throw UsageError("--bins " + options.bins + ": give between 1 and 1000000 bins, or --bins auto.");
    plan.bins = static_cast<int>(bins);
  }
  if (options.range != "auto") plan.range = parse_range("range", options.range, "-60,-30 (or auto)");
  return plan;
}

SampleBlock sample_block(std::int64_t samples, int rank, int ranks) {
  // Balanced contiguous blocks (sizes differ by at most one), in rank order.
  return {samples * rank / ranks, samples * (rank + 1) / ranks};
}

int freedman_diaconis_bins(std::vector<double> values) {
  if (values.size() < 2) return 1;
  std::sort(values.begin(), values.end());
  const double iqr = quantile(values, 0.75) - quantile(values, 0.25);
  const double span = values.back() - values.front();
  if (!(iqr > 0) || !(span > 0)) return 1;
  const double width = 2 * iqr / std::cbrt(static_cast<double>(values.size()));
  return static_cast<int>(std::clamp(std::ceil(span / width), 1.0, static_cast<double>(kMaxAutoBins)));
}

Histogram make_histogram(const std::vector<double>& values, int bins, std::pair<double, double> range) {
  Histogram h;
  const auto [lo, hi] = range;
  h.edges.resize(static_cast<std::size_t>(bins) + 1);
  for (int i = 0; i <= bins; ++i) h.edges[i] = lo + (hi - lo) * i / bins;
  h.edges.back() = hi;
  h.counts.assign(static_cast<std::size_t>(bins), 0.0);
  for (double v : values) {
    if (!(v >= lo && v <= hi)) {
      ++h.outside;
      continue;
    }
    auto bin = static_cast<std::size_t>(std::upper_bound(h.edges.begin(), h.edges.end(), v) - h.edges.begin()) - 1;
    bin = std::min(bin, h.counts.size() - 1);  // v == hi: the last bin is closed
    h.counts[bin] += 1;
  }
  return h;
}

double ks_statistic_normal(std::vector<double> values, double mean, double variance) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double sd = std::sqrt(variance);
  const double n = static_cast<double>(values.size());
  double worst = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double cdf = 0.5 * std::erfc(-(values[i] - mean) / (sd * std::numbers::sqrt2));
    worst = std::max({worst, static_cast<double>(i + 1) / n - cdf, cdf - static_cast<double>(i) / n});
  }
  return worst;
}

Analysis analyze(const RunPlan& plan, const RunResults& results) {
  Analysis a;
  a.samples = static_cast<std::int64_t>(results.index.size());
  a.theory_mean = linalg::lkj_log_det_mean(plan.dim, plan.eta);
  a.theory_variance = linalg::lkj_log_det_variance(plan.dim, plan.eta);
  std::vector<double> valid;
  for (std::size_t i = 0; i < results.index.size(); ++i) {
    if (!results.positive_definite[i]) {
      ++a.not_positive_definite;
      continue;
    }
    valid.push_back(results.log_det[i]);
    const double diff = std::abs(results.log_det[i] - results.log_det_factor[i]);
    a.max_abs_cross_check = std::max(a.max_abs_cross_check, diff);
    a.max_rel_cross_check =
        std::max(a.max_rel_cross_check, diff / std::max(1e-300, std::abs(results.log_det_factor[i])));
  }
  a.valid = static_cast<std::int64_t>(valid.size());
  if (!valid.empty()) {
    double sum = 0;
    for (double v : valid) sum += v;
    a.mean = sum / static_cast<double>(valid.size());
    double squares = 0;
    for (double v : valid) squares += (v - a.mean) * (v - a.mean);
    a.sd = valid.size() > 1 ? std::sqrt(squares / static_cast<double>(valid.size() - 1)) : 0.0;
    a.z_score = (a.mean - a.theory_mean) / std::sqrt(a.theory_variance / static_cast<double>(valid.size()));
    a.ks = ks_statistic_normal(valid, a.theory_mean, a.theory_variance);
    a.ks_critical_1pct = 1.628 / std::sqrt(static_cast<double>(valid.size()));
    const auto [low, high] = std::minmax_element(valid.begin(), valid.end());
    std::pair<double, double> range{*low, *high};
    if (!(range.first < range.second)) range = {*low - 0.5, *high + 0.5};
    if (plan.range) range = *plan.range;
    a.histogram = make_histogram(valid, plan.bins ? *plan.bins : freedman_diaconis_bins(valid), range);
  }
  if (results.wall_seconds > 0) {
    a.matrices_per_second = static_cast<double>(a.samples) / results.wall_seconds;
    a.gflops = a.matrices_per_second * linalg::determinant_flops(plan.dim) * 1e-9;
  }
  a.median_determinant_seconds = median(results.determinant_seconds);
  a.median_sample_seconds = median(results.sample_seconds);
  return a;
}

std::string format_summary(const RunPlan& plan, const RunResults& results, const Analysis& a) {
  std::ostringstream out;
  out << std::setprecision(6);
  out << "logdet-histogram: " << a.samples << " LKJ(eta=" << plan.eta << ") matrices of dimension " << plan.dim
      << ", " << short_name(plan.precision) << ", " << results.rank_devices.size() << " rank(s)\n";
  for (std::size_t r = 0; r < results.rank_devices.size(); ++r)
    out << "  rank " << r << ": " << results.rank_devices[r] << "\n";
  out << "  log det C     sample mean " << a.mean << "  sd " << a.sd << "  (" << a.valid << " samples)\n";
  out << "  theory        mean " << a.theory_mean << "  sd " << std::sqrt(a.theory_variance) << "\n";
  out << "  z-score of the mean " << std::setprecision(3) << a.z_score
      << (std::abs(a.z_score) < 4 ? "  (within 4 standard errors)" : "  (OUTSIDE 4 standard errors)") << "\n";
  // N(E, Var) has the exact mean and variance, but the law of log det C is only close to
  // normal for large d (at d = 2 it is log(1 - r^2), far from normal): a large KS at small
  // d is the approximation, not a wrong sample, whereas the z-score is exact at any d.
  out << "  KS vs N(E, Var) " << a.ks << "  (1% critical value " << a.ks_critical_1pct
      << (a.ks > a.ks_critical_1pct ? "; the normal approximation is coarse at this d and sample size" : "")
      << ")\n";
  out << std::setprecision(3);
  out << "  cross-check |chol(C) log det - 2 sum log L_ii|: max " << a.max_abs_cross_check << " (relative "
      << a.max_rel_cross_check << ")" << (plan.precision == Precision::float32 ? " = the FP32 error vs FP64" : "")
      << "\n";
  if (a.not_positive_definite > 0)
    out << "  WARNING: " << a.not_positive_definite << " of " << a.samples << " samples: C = L L^T was not numerically "
        << "positive definite in " << short_name(plan.precision)
        << " (POTRF failed); left out of the histogram and the statistics\n";
  else
    out << "  every C was numerically positive definite\n";
  out << "  histogram " << a.histogram.counts.size() << " bins" << (plan.bins ? "" : " (Freedman-Diaconis)");
  if (a.histogram.outside > 0) out << ", " << a.histogram.outside << " samples outside --range";
  out << "\n";
  out << "  throughput " << a.matrices_per_second << " matrices/s, " << a.gflops
      << " GFLOP/s (SYRK + POTRF, all ranks, wall clock " << results.wall_seconds << " s)\n";
  out << "  per matrix: sampling " << a.median_sample_seconds << " s, determinant " << a.median_determinant_seconds
      << " s (medians); matrix buffers " << std::setprecision(4)
      << static_cast<double>(results.buffer_bytes_per_rank) / (1024.0 * 1024.0) << " MiB per rank\n";
  return out.str();
}

void write_metrics(const std::string& path, const cli::RunAttributes& attributes, const RunPlan& plan,
                   const RunResults& results, const Analysis& a) {
  io::MetricsWriter writer(path);
  cli::write_run_attributes(writer, attributes);
  writer.set_attribute("", "dim", plan.dim);
  writer.set_attribute("", "eta", plan.eta);
  writer.set_attribute("", "samples", plan.samples);
  writer.set_attribute("", "precision", short_name(plan.precision));
  writer.set_attribute("", "ranks", static_cast<std::int64_t>(results.rank_devices.size()));
  writer.set_attribute("", "blas_threads", plan.threads);
  writer.write("run/rank_device", std::span<const std::string>(results.rank_devices));

  writer.write("samples/index", std::span<const std::int64_t>(results.index));
  writer.write("samples/log_det", std::span<const double>(results.log_det));
  writer.write("samples/log_det_factor", std::span<const double>(results.log_det_factor));
  writer.write("samples/positive_definite", std::span<const std::int64_t>(results.positive_definite));
  writer.write("samples/rank", std::span<const std::int64_t>(results.rank));
  writer.write("samples/sample_seconds", std::span<const double>(results.sample_seconds));
  writer.write("samples/determinant_seconds", std::span<const double>(results.determinant_seconds));
  writer.set_attribute("samples/log_det", "meaning",
                       "2 sum log diag(chol(L L^T)) per sample index; NaN where C was not positive definite");

  writer.write("histogram/edges", std::span<const double>(a.histogram.edges));
  writer.write("histogram/counts", std::span<const double>(a.histogram.counts));
  writer.set_attribute("histogram", "outside_range", a.histogram.outside);
  writer.set_attribute("histogram", "rule", plan.bins ? "fixed" : "freedman-diaconis");

  writer.set_attribute("theory", "mean", a.theory_mean);
  writer.set_attribute("theory", "variance", a.theory_variance);
  writer.set_attribute("summary", "mean", a.mean);
  writer.set_attribute("summary", "sd", a.sd);
  writer.set_attribute("summary", "z_score", a.z_score);
  writer.set_attribute("summary", "ks_statistic", a.ks);
  writer.set_attribute("summary", "valid_samples", a.valid);
  writer.set_attribute("summary", "not_positive_definite", a.not_positive_definite);
  writer.set_attribute("summary", "max_abs_cross_check", a.max_abs_cross_check);
  writer.set_attribute("summary", "max_rel_cross_check", a.max_rel_cross_check);
  writer.set_attribute("summary", "matrices_per_second", a.matrices_per_second);
  writer.set_attribute("summary", "gflops", a.gflops);
  writer.set_attribute("summary", "wall_seconds", results.wall_seconds);
  writer.set_attribute("summary", "buffer_bytes_per_rank", static_cast<std::int64_t>(results.buffer_bytes_per_rank));
  writer.close();
}

void write_histogram_png(const std::string& path, const RunPlan& plan, const Analysis& a) {
  const auto& h = a.histogram;
  if (h.counts.empty()) return;
  // Density scale, so the normal curve and the bars share the y axis.
  std::vector<double> density(h.counts.size());
  const double total = static_cast<double>(a.valid);
  for (std::size_t i = 0; i < h.counts.size(); ++i) density[i] = h.counts[i] / (total * (h.edges[i + 1] - h.edges[i]));
  const double sd = std::sqrt(a.theory_variance);
  const double lo = std::min(h.edges.front(), a.theory_mean - 4 * sd);
  const double hi = std::max(h.edges.back(), a.theory_mean + 4 * sd);
  std::vector<double> x(400), y(400);
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(x.size() - 1);
    const double t = (x[i] - a.theory_mean) / sd;
    y[i] = std::exp(-0.5 * t * t) / (sd * std::sqrt(2 * std::numbers::pi));
  }
  std::ostringstream title;
  title << "log det of LKJ(" << plan.eta << ") matrices, d = " << plan.dim << ", " << a.valid << " samples ("
        << short_name(plan.precision) << ")";
  io::Figure figure;
  figure.title(title.str())
      .x_label("log det C")
      .y_label("density")
      .histogram("samples", h.edges, density)
      .line("theory N(E, Var)", x, y)
      .vertical_line("theory mean", a.theory_mean)
      .vertical_line("sample mean", a.mean);
  figure.save_png(path);
}

}  // namespace slurmlab::logdet
