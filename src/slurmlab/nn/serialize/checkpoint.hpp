#pragma once
// Training checkpoints in HDF5: weights and buffers, optimizer state, random generator
// states, epoch/step and the position in the data, plus a checksum over all of it.
//
// Layout (h5py-readable): /model/<name> and /optimizer/<name> float32 datasets,
// /rng/<name> string attributes, root attributes epoch, step, data_position,
// learning_rate, optimizer_steps, optimizer, format, checksum (FNV-1a 64 as hex).
//
// The file is written under a temporary name and renamed (a killed job never leaves a half
// checkpoint that looks whole); on load the checksum is recomputed from what was read and a
// mismatch, a truncated file or a missing tensor is refused with a message naming the file,
// before anything in the network is touched.
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "slurmlab/nn/layers/layer.hpp"
#include "slurmlab/nn/optim/optim.hpp"

namespace slurmlab::nn {

struct TrainingPosition {
  std::int64_t epoch = 0;
  std::int64_t step = 0;           // optimizer steps taken in total
  std::int64_t data_position = 0;  // batches consumed in the current epoch
};

// Generators that are not part of the network (data shuffling, augmentation) go along by name.
using NamedGenerators = std::vector<std::pair<std::string, Generator*>>;

void save_checkpoint(const std::filesystem::path& path, Layer& model, Optimizer* optimizer,
                     const TrainingPosition& position, const NamedGenerators& generators = {});

// Restores everything save_checkpoint wrote into objects of the same architecture. With a null
// `optimizer` only the model (weights, buffers, its generators) is restored and the stored
// optimizer state is ignored: loading weights for evaluation.
// Throws std::runtime_error (file unreadable, truncated, checksum mismatch, architecture
// mismatch) without modifying anything.
TrainingPosition load_checkpoint(const std::filesystem::path& path, Layer& model, Optimizer* optimizer,
                                 const NamedGenerators& generators = {});

}  // namespace slurmlab::nn
