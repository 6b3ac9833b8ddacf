#pragma once
// Sample moments for the statistical tests: mean, unbiased variance, fourth central moment,
// and the standard errors a test needs to judge the mean and the variance.
#include <cmath>
#include <cstddef>
#include <numeric>
#include <vector>

namespace slurmlab::testing {

struct Moments {
  double mean = 0, variance = 0, fourth = 0;  // fourth central moment
  std::size_t n = 0;
  double standard_error_of_mean() const { return std::sqrt(variance / static_cast<double>(n)); }
  double standard_error_of_variance() const {
    return std::sqrt((fourth - variance * variance) / static_cast<double>(n));
  }
};

inline Moments moments(const std::vector<double>& x) {
  Moments m;
  m.n = x.size();
  m.mean = std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(m.n);
  for (double v : x) {
    const double c = (v - m.mean) * (v - m.mean);
    m.variance += c;
    m.fourth += c * c;
  }
  m.variance /= static_cast<double>(m.n - 1);
  m.fourth /= static_cast<double>(m.n);
  return m;
}

}  // namespace slurmlab::testing
