#include "slurmlab/data/split.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <sstream>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/random_stream.hpp"

namespace slurmlab::data {
namespace {

std::string number(double value) {
  std::ostringstream out;
  out.precision(15);
  out << value;
  return out.str();
}

}  // namespace

std::int64_t validation_count(std::int64_t dataset_size, double val_size, const std::string& option) {
  const std::string asked = option + " " + number(val_size);
  if (!std::isfinite(val_size) || val_size < 0) {
    throw UsageError(asked +
                     " is negative or not a number; give a count of samples (e.g. 5000) or a fraction "
                     "between 0 and 1 (e.g. 0.1), or 0 for no validation part.");
  }
  if (val_size == 0) return 0;
  std::int64_t count = 0;
  if (val_size < 1) {
    count = std::llround(val_size * static_cast<double>(dataset_size));
    if (count == 0) {
      throw UsageError(asked + " of " + std::to_string(dataset_size) +
                       " samples rounds to no validation sample; give a larger fraction or a count.");
    }
  } else {
    if (val_size != std::floor(val_size)) {
      throw UsageError(asked + " is neither a whole count nor a fraction between 0 and 1; give e.g. " +
                       std::to_string(static_cast<std::int64_t>(val_size)) + " or 0.1.");
    }
    count = static_cast<std::int64_t>(val_size);
  }
  if (count >= dataset_size) {
    throw UsageError(asked + " asks for " + std::to_string(count) + " validation samples but the data set holds " +
                     std::to_string(dataset_size) + ", which leaves none to train on; give fewer than " +
                     std::to_string(dataset_size) + ".");
  }
  return count;
}

TrainValidationSplit split_train_validation(std::int64_t dataset_size, double val_size, std::uint64_t seed,
                                            const std::string& option) {
  const auto count = validation_count(dataset_size, val_size, option);
  std::vector<std::int64_t> order(static_cast<std::size_t>(dataset_size));
  std::iota(order.begin(), order.end(), 0);
  // Only the first `count` positions matter: a partial Fisher-Yates from the front.
  std::mt19937_64 engine(splitmix64(seed ^ 0x73706c6974ULL /* "split" */));
  for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i) {
    std::swap(order[i], order[i + uniform_below(engine, order.size() - i)]);
  }
  TrainValidationSplit split;
  split.validation.assign(order.begin(), order.begin() + count);
  split.train.assign(order.begin() + count, order.end());
  std::sort(split.validation.begin(), split.validation.end());
  std::sort(split.train.begin(), split.train.end());
  return split;
}

}  // namespace slurmlab::data
