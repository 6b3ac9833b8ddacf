#include "slurmlab/linalg/lkj_theory.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace slurmlab::linalg {

namespace {
// At x >= 16 the first omitted series terms (B_12) are below 1e-16.
constexpr double kShiftTo = 16.0;

void require_positive(double x, const char* name) {
  if (!(x > 0.0)) throw std::domain_error(std::string(name) + " needs x > 0, got " + std::to_string(x));
}
}  // namespace

double digamma(double x) {
  require_positive(x, "digamma");
  double result = 0.0;
  while (x < kShiftTo) {  // psi(x) = psi(x + 1) - 1/x
    result -= 1.0 / x;
    x += 1.0;
  }
  const double inv2 = 1.0 / (x * x);
  // ln x - 1/(2x) - sum B_2k / (2k x^2k)
  const double series =
      inv2 * (1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 * (1.0 / 132)))));
  return result + std::log(x) - 0.5 / x - series;
}

double trigamma(double x) {
  require_positive(x, "trigamma");
  double result = 0.0;
  while (x < kShiftTo) {  // psi1(x) = psi1(x + 1) + 1/x^2
    result += 1.0 / (x * x);
    x += 1.0;
  }
  const double inv = 1.0 / x, inv2 = inv * inv;
  // 1/x + 1/(2x^2) + sum B_2k / x^(2k+1)
  const double series =
      inv * inv2 * (1.0 / 6 - inv2 * (1.0 / 30 - inv2 * (1.0 / 42 - inv2 * (1.0 / 30 - inv2 * (5.0 / 66)))));
  return result + inv + 0.5 * inv2 + series;
}

namespace {
void check(int dim, double eta) {
  if (dim < 2) throw std::domain_error("LKJ log-determinant theory needs dim >= 2");
  if (!(eta > 0.0)) throw std::domain_error("LKJ log-determinant theory needs eta > 0");
}
}  // namespace

double lkj_log_det_mean(int dim, double eta) {
  check(dim, eta);
  double sum = 0.0;
  for (int k = 0; k <= dim - 2; ++k) sum += digamma(eta + 0.5 * k);
  return sum - (dim - 1) * digamma(eta + 0.5 * (dim - 1));
}

double lkj_log_det_variance(int dim, double eta) {
  check(dim, eta);
  double sum = 0.0;
  for (int k = 0; k <= dim - 2; ++k) sum += trigamma(eta + 0.5 * k);
  return sum - (dim - 1) * trigamma(eta + 0.5 * (dim - 1));
}

}  // namespace slurmlab::linalg
