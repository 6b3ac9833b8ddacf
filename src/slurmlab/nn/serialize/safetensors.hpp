#pragma once
// safetensors (https://huggingface.co/docs/safetensors), the weight format model hubs use:
// an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and
// byte range, then the raw little-endian data. Only F32 tensors are written and read here.
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "slurmlab/nn/layers/layer.hpp"

namespace slurmlab::nn {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// Written atomically (temporary name, then rename). Names must be unique.
void save_safetensors(const std::filesystem::path& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  std::vector<NamedTensor> tensors;  // in file order of their data
  std::map<std::string, std::string> metadata;
  const Tensor& at(const std::string& name) const;
};
// Throws std::runtime_error naming the file and the defect for anything malformed (short file,
// header past the end, overlapping or out-of-range offsets, dtypes other than F32).
SafetensorsFile load_safetensors(const std::filesystem::path& path);

// A network's parameters and buffers under their names.
std::vector<NamedTensor> state_of(Layer& layer);
// Copies tensors from `file` into the network's parameters and buffers by name; every name
// the network has must be present with the same shape.
void load_state(Layer& layer, const SafetensorsFile& file);

}  // namespace slurmlab::nn
