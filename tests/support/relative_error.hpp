// The backend tests' measure of a float result against its truth summed in double: the largest
// absolute difference as a fraction of the truth's largest magnitude (floored at 1e-6).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace slurmlab::testing {

inline double relative_max_error(const std::vector<double>& truth, const float* got) {
  double scale = 1e-6, worst = 0.0;
  for (double t : truth) scale = std::max(scale, std::abs(t));
  for (std::size_t i = 0; i < truth.size(); ++i) worst = std::max(worst, std::abs(truth[i] - got[i]));
  return worst / scale;
}

}  // namespace slurmlab::testing
