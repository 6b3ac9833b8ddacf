#pragma once
// Holding out a validation part of a training set (`--val-size 5000` or `--val-size 0.1`),
// as torch.utils.data.random_split with a seeded generator does, but reproducible from the
// seed alone on every rank, rank count and standard library.
//
// The data set indices 0..size-1 are permuted by a generator seeded by `seed` (a stream of its
// own, so the split does not move when the sampler's shuffle seed is the same number); the
// first `count` positions of that permutation are the validation part, the rest the training
// part. Both parts come back sorted ascending (memory-mapped files are then read forwards
// when a part is walked in order, e.g. for normalization statistics or validation).
#include <cstdint>
#include <string>
#include <vector>

namespace slurmlab::data {

struct TrainValidationSplit {
  std::vector<std::int64_t> train;
  std::vector<std::int64_t> validation;
};

// The number of validation samples `val_size` asks for out of `dataset_size`: a whole number
// >= 1 is a count, a number strictly between 0 and 1 a fraction (rounded to the nearest
// count), 0 means none. Throws slurmlab::UsageError (one sentence naming `option`, the numbers
// and the fix) for a negative size, a non-integer size above 1, a fraction that rounds to no
// sample, or a size that leaves no training sample.
std::int64_t validation_count(std::int64_t dataset_size, double val_size, const std::string& option = "--val-size");

// Splits 0..dataset_size-1 into training and validation indices (see above).
TrainValidationSplit split_train_validation(std::int64_t dataset_size, double val_size, std::uint64_t seed,
                                            const std::string& option = "--val-size");

}  // namespace slurmlab::data
