#include "slurmlab/nn/serialize/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "slurmlab/io/atomic_file.hpp"

namespace slurmlab::nn {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

void save_safetensors(const std::filesystem::path& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  std::set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    if (!names.insert(name).second) throw std::invalid_argument("save_safetensors: tensor name '" + name + "' repeats");
    header[name] = {{"dtype", "F32"}, {"shape", tensor.shape()}, {"data_offsets", {offset, offset + tensor.bytes()}}};
    offset += tensor.bytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  std::string contents(8, '\0');
  const std::uint64_t length = text.size();
  std::memcpy(contents.data(), &length, 8);
  contents += text;
  contents.reserve(contents.size() + offset);
  for (const auto& [name, tensor] : tensors) {
    const Tensor host = tensor.to(Device::cpu);  // the tensor itself where it is on the CPU
    contents.append(reinterpret_cast<const char*>(host.data()), host.bytes());
  }
  io::write_file_atomically(path, contents);
}

const Tensor& SafetensorsFile::at(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return t.tensor;
  throw std::out_of_range("safetensors file has no tensor named '" + name + "'");
}

SafetensorsFile load_safetensors(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open safetensors file " + path.string());
  std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto fail = [&](const std::string& why) { throw std::runtime_error("safetensors file " + path.string() + ": " + why); };
  if (contents.size() < 8) fail("shorter than its 8-byte header length (truncated?)");
  std::uint64_t length = 0;
  std::memcpy(&length, contents.data(), 8);
  if (length > contents.size() - 8) fail("header length " + std::to_string(length) + " runs past the end of the file");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(contents.substr(8, length));
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("header is not JSON (") + e.what() + ")");
  }
  const std::uint64_t data_size = contents.size() - 8 - length;
  const char* data = contents.data() + 8 + length;
  SafetensorsFile file;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      for (auto& [key, value] : entry.items()) file.metadata[key] = value.get<std::string>();
      continue;
    }
    if (entry.value("dtype", "") != "F32") fail("tensor '" + name + "' has dtype " + entry.value("dtype", "?") + ", only F32 is supported");
    const Shape shape = entry.at("shape").get<Shape>();
    const auto offsets = entry.at("data_offsets").get<std::vector<std::uint64_t>>();
    if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size) {
      fail("tensor '" + name + "' has data offsets outside the data section (truncated?)");
    }
    if (offsets[1] - offsets[0] != static_cast<std::uint64_t>(element_count(shape)) * sizeof(float)) {
      fail("tensor '" + name + "' byte range does not match its shape " + to_string(shape));
    }
    ranges.emplace_back(offsets[0], offsets[1]);
    Tensor tensor(shape);
    std::memcpy(tensor.data(), data + offsets[0], tensor.bytes());
    file.tensors.push_back({name, tensor});
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) fail("tensor byte ranges overlap");
  return file;
}

std::vector<NamedTensor> state_of(Layer& layer) {
  std::vector<NamedTensor> state;
  for (auto& p : parameters_of(layer)) state.push_back({p.name, p.parameter->value});
  for (auto& b : buffers_of(layer)) state.push_back({b.name, *b.buffer});
  return state;
}

void load_state(Layer& layer, const SafetensorsFile& file) {
  auto copy = [&](const std::string& name, Tensor& destination) {
    const Tensor& source = file.at(name);
    if (source.shape() != destination.shape()) {
      throw std::runtime_error("tensor '" + name + "' has shape " + to_string(source.shape()) + " in the file but " +
                               to_string(destination.shape()) + " in the network");
    }
    destination.copy_from(source);
  };
  for (auto& p : parameters_of(layer)) copy(p.name, p.parameter->value);
  for (auto& b : buffers_of(layer)) copy(b.name, *b.buffer);
}

}  // namespace slurmlab::nn
