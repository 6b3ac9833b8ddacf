#include "slurmlab/nn/tensor/random.hpp"

#include <cmath>
#include <numbers>
#include <sstream>
#include <stdexcept>

namespace slurmlab::nn {

float Generator::normal() {
  float u1 = uniform(0.0f, 1.0f);
  while (u1 <= 0.0f) u1 = uniform(0.0f, 1.0f);
  const float u2 = uniform(0.0f, 1.0f);
  return std::sqrt(-2.0f * std::log(u1)) * std::cos(2.0f * std::numbers::pi_v<float> * u2);
}

std::uint64_t Generator::below(std::uint64_t bound) {
  if (bound == 0) throw std::invalid_argument("Generator::below(0)");
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  std::uint64_t value = engine_();
  while (value >= limit) value = engine_();
  return value % bound;
}

std::string Generator::state() const {
  std::ostringstream out;
  out << engine_;
  return out.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 engine;
  in >> engine;
  if (in.fail()) throw std::runtime_error("random generator state does not parse (corrupt checkpoint?)");
  engine_ = engine;
}

}  // namespace slurmlab::nn
