#pragma once
// The data side of train-classifier: the data set named by --data, its train/validation split,
// the transforms (normalization statistics from the training part when asked), and per-rank
// loaders for training, validation and test, each a BatchSource for the trainer.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "classifier_model.hpp"
#include "classifier_options.hpp"
#include "slurmlab/cluster/mpi_session.hpp"
#include "slurmlab/data/batch_loader.hpp"
#include "slurmlab/data/split.hpp"
#include "slurmlab/train/module.hpp"

namespace classifier {

struct DataSetup {
  std::unique_ptr<slurmlab::data::ImageDataset> train_set, test_set;
  slurmlab::data::TrainValidationSplit split;
  // The data has no test split of its own (a folder without val/ or test/): test_set is the
  // validation part of train_set.
  bool test_is_validation = false;
  std::int64_t global_batch = 0;
  int loader_threads = 0;
  std::string normalization_note;  // how mean/std were chosen, for the log
};

// Collective (failures end every rank alike; normalization statistics: rank 0 computes, every
// rank receives). Opens the data
// sets and splits; the spec's input, classes and transforms are filled from the data and the
// options. UsageError for anything impossible (bad --data, batch not divisible by the ranks,
// crop larger than the image...), the same on every rank.
DataSetup open_data(const ProgramOptions& options, const slurmlab::cluster::MpiSession& session,
                    std::optional<int> cpus_per_task, std::uint64_t seed, ModelSpec& spec);

// The test split through the spec's evaluation transforms must come out the network's input
// (spec.input, from the training split): a folder whose train/ and val/ hold images of two
// different sizes does not without --resize. UsageError naming both shapes and the fix.
void require_test_split_fits(const ModelSpec& spec, const DataSetup& setup);

// Opens only the data sets and split (evaluation of a checkpoint, whose spec fixes transforms);
// local: the caller runs it collectively.
DataSetup open_data_for(const ProgramOptions& options, const slurmlab::cluster::MpiSession& session,
                        std::optional<int> cpus_per_task, std::uint64_t seed);

// A batch source with what it reads from: a loader (worker threads on the CPU), or for
// training on a GPU the set resident there (data::DeviceImageSet); `note` says which, for the log.
struct LoaderSource {
  std::unique_ptr<slurmlab::data::BatchLoader> loader;
  std::unique_ptr<slurmlab::data::DeviceImageSet> device_set;
  std::unique_ptr<slurmlab::train::BatchSource> source;
  std::string note;
};

enum class Part { train, validation, test };

// This rank's loader over `part`: training shuffles and augments (random crop, flip), the
// others walk the part in order with the evaluation transforms and pad the last batch (the
// padding does not count in metrics). Batches for a GPU (`device` cuda) are loaded into
// page-locked memory and copied to the device without waiting.
LoaderSource make_loader(const DataSetup& setup, const ModelSpec& spec, const ProgramOptions& options, Part part,
                         int world_size, int rank, std::uint64_t seed,
                         slurmlab::nn::Device device = slurmlab::nn::Device::cpu);

// The training source on `device`: on a GPU, per --data-on-gpu, the training set resident there
// (the same batches as make_loader's, made by a CUDA kernel into device tensors), else
// make_loader's. auto falls back to the loader, saying why in `note`, when the set's images
// differ in size or it does not fit in half the free GPU memory; on refuses that (UsageError).
LoaderSource make_train_source(const DataSetup& setup, const ModelSpec& spec, const ProgramOptions& options,
                               int world_size, int rank, std::uint64_t seed, slurmlab::nn::Device device);

}  // namespace classifier
