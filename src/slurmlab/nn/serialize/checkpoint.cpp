#include "slurmlab/nn/serialize/checkpoint.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <stdexcept>

#include "slurmlab/io/atomic_file.hpp"
#include "slurmlab/io/hdf5_handle.hpp"

namespace slurmlab::nn {

namespace {

constexpr const char* kFormat = "slurmlab-checkpoint-1";

using io::hdf5::Handle;

// FNV-1a, 64 bit: cheap, no dependency, and any flipped bit changes it.
class Checksum {
 public:
  void add(const void* data, std::size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < bytes; ++i) {
      hash_ ^= p[i];
      hash_ *= 0x100000001b3ULL;
    }
  }
  void add(const std::string& text) {
    add(text.data(), text.size());
    add("\0", 1);
  }
  void add(std::int64_t value) { add(&value, sizeof value); }
  std::string hex() const {
    char buffer[17];
    std::snprintf(buffer, sizeof buffer, "%016" PRIx64, hash_);
    return buffer;
  }

 private:
  std::uint64_t hash_ = 0xcbf29ce484222325ULL;
};

// Everything a checkpoint holds, in memory, ordered by name so the checksum is canonical.
struct Contents {
  std::map<std::string, Tensor> model, optimizer;
  std::map<std::string, std::string> generators;
  TrainingPosition position;
  double learning_rate = 0.0;
  std::int64_t optimizer_steps = 0;
  std::string optimizer_kind;

  std::string checksum() const {
    Checksum sum;
    sum.add(std::string(kFormat));
    for (const auto* group : {&model, &optimizer})
      for (const auto& [name, tensor] : *group) {
        sum.add(name);
        for (auto extent : tensor.shape()) sum.add(extent);
        sum.add(tensor.data(), tensor.bytes());
      }
    for (const auto& [name, state] : generators) {
      sum.add(name);
      sum.add(state);
    }
    sum.add(position.epoch);
    sum.add(position.step);
    sum.add(position.data_position);
    sum.add(&learning_rate, sizeof learning_rate);
    sum.add(optimizer_steps);
    sum.add(optimizer_kind);
    return sum.hex();
  }
};

// What a checkpoint of these objects holds. For writing, host copies of tensors on a GPU (HDF5
// and the checksum read host memory; tensors on the CPU are taken as they are); otherwise the
// tensors where they are (loading only compares their shapes).
enum class Copies { to_host, none };
Contents gather(Layer& model, Optimizer* optimizer, const TrainingPosition& position, const NamedGenerators& generators,
                Copies copies = Copies::to_host) {
  Contents c;
  const auto take = [copies](const Tensor& t) { return copies == Copies::to_host ? t.to(Device::cpu) : t; };
  for (auto& p : parameters_of(model)) c.model[p.name] = take(p.parameter->value);
  for (auto& b : buffers_of(model)) c.model[b.name] = take(*b.buffer);
  if (optimizer) {
    optimizer->visit_state([&](const std::string& name, Tensor& t) { c.optimizer[name] = take(t); });
    c.learning_rate = optimizer->learning_rate();
    c.optimizer_steps = optimizer->steps_taken();
    c.optimizer_kind = optimizer->describe();
  }
  model.visit_generators("", [&](const std::string& name, Generator& g) { c.generators["model." + name] = g.state(); });
  for (const auto& [name, g] : generators) c.generators["extra." + name] = g->state();
  c.position = position;
  return c;
}

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& why) {
  throw std::runtime_error("checkpoint " + path.string() + ": " + why);
}

void write_string_attribute(hid_t object, const std::string& name, const std::string& value) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), value.empty() ? 1 : value.size());
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attribute.valid() || H5Awrite(attribute.get(), type.get(), value.c_str()) < 0) {
    throw std::runtime_error("cannot write attribute " + name);
  }
}

template <typename T>
void write_scalar_attribute(hid_t object, const std::string& name, hid_t type, T value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate2(object, name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attribute.valid() || H5Awrite(attribute.get(), type, &value) < 0) throw std::runtime_error("cannot write attribute " + name);
}

std::string read_string_attribute(hid_t object, const std::string& name) {
  Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose);
  if (!attribute.valid()) throw std::runtime_error("attribute '" + name + "' is missing");
  Handle type(H5Aget_type(attribute.get()), H5Tclose);
  const std::size_t size = H5Tget_size(type.get());
  std::string value(size, '\0');
  Handle memory(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(memory.get(), size);
  if (H5Aread(attribute.get(), memory.get(), value.data()) < 0) throw std::runtime_error("attribute '" + name + "' unreadable");
  while (!value.empty() && value.back() == '\0') value.pop_back();
  return value;
}

template <typename T>
T read_scalar_attribute(hid_t object, const std::string& name, hid_t type) {
  Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose);
  T value{};
  if (!attribute.valid() || H5Aread(attribute.get(), type, &value) < 0) {
    throw std::runtime_error("attribute '" + name + "' is missing or unreadable");
  }
  return value;
}

void write_tensors(hid_t file, const char* group_name, const std::map<std::string, Tensor>& tensors) {
  Handle group(H5Gcreate2(file, group_name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!group.valid()) throw std::runtime_error(std::string("cannot create group ") + group_name);
  for (const auto& [name, tensor] : tensors) {
    std::vector<hsize_t> dims(tensor.shape().begin(), tensor.shape().end());
    Handle space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                 H5Sclose);
    Handle set(H5Dcreate2(group.get(), name.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
               H5Dclose);
    if (!set.valid() || (tensor.numel() > 0 && H5Dwrite(set.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, tensor.data()) < 0)) {
      throw std::runtime_error("cannot write dataset " + std::string(group_name) + "/" + name);
    }
  }
}

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* names) {
  static_cast<std::vector<std::string>*>(names)->emplace_back(name);
  return 0;
}

herr_t collect_attribute_name(hid_t, const char* name, const H5A_info_t*, void* names) {
  static_cast<std::vector<std::string>*>(names)->emplace_back(name);
  return 0;
}

std::map<std::string, Tensor> read_tensors(hid_t file, const char* group_name) {
  std::map<std::string, Tensor> tensors;
  Handle group(H5Gopen2(file, group_name, H5P_DEFAULT), H5Gclose);
  if (!group.valid()) throw std::runtime_error(std::string("group ") + group_name + " is missing");
  std::vector<std::string> names;
  if (H5Literate(group.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names) < 0) {
    throw std::runtime_error(std::string("cannot list group ") + group_name);
  }
  for (const auto& name : names) {
    Handle set(H5Dopen2(group.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
    Handle space(H5Dget_space(set.get()), H5Sclose);
    if (!set.valid() || !space.valid()) throw std::runtime_error("dataset " + name + " unreadable");
    const int rank = H5Sget_simple_extent_ndims(space.get());
    std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    Shape shape(dims.begin(), dims.end());
    Tensor tensor(shape);
    if (tensor.numel() > 0 && H5Dread(set.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, tensor.data()) < 0) {
      throw std::runtime_error("dataset " + std::string(group_name) + "/" + name + " unreadable (truncated?)");
    }
    tensors[name] = tensor;
  }
  return tensors;
}

}  // namespace

void save_checkpoint(const std::filesystem::path& path, Layer& model, Optimizer* optimizer,
                     const TrainingPosition& position, const NamedGenerators& generators) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const Contents contents = gather(model, optimizer, position, generators);
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const auto temporary = io::temporary_sibling(path);
  try {
    {
      Handle file(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
      if (!file.valid()) fail(path, "cannot create " + temporary.string());
      write_tensors(file.get(), "model", contents.model);
      write_tensors(file.get(), "optimizer", contents.optimizer);
      Handle rng(H5Gcreate2(file.get(), "rng", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      for (const auto& [name, state] : contents.generators) write_string_attribute(rng.get(), name, state);
      const hid_t root = file.get();
      write_string_attribute(root, "format", kFormat);
      write_scalar_attribute(root, "epoch", H5T_NATIVE_INT64, contents.position.epoch);
      write_scalar_attribute(root, "step", H5T_NATIVE_INT64, contents.position.step);
      write_scalar_attribute(root, "data_position", H5T_NATIVE_INT64, contents.position.data_position);
      write_scalar_attribute(root, "learning_rate", H5T_NATIVE_DOUBLE, contents.learning_rate);
      write_scalar_attribute(root, "optimizer_steps", H5T_NATIVE_INT64, contents.optimizer_steps);
      write_string_attribute(root, "optimizer", contents.optimizer_kind);
      write_string_attribute(root, "checksum", contents.checksum());
      if (H5Fflush(root, H5F_SCOPE_GLOBAL) < 0) fail(path, "cannot flush " + temporary.string());
    }
    io::commit_temporary(temporary, path);
  } catch (const std::exception& e) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    if (std::string(e.what()).rfind("checkpoint ", 0) == 0) throw;
    fail(path, e.what());
  }
}

TrainingPosition load_checkpoint(const std::filesystem::path& path, Layer& model, Optimizer* optimizer,
                                 const NamedGenerators& generators) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (!std::filesystem::exists(path)) fail(path, "does not exist; check the checkpoint path (--ckpt) and the checkpoint directory");
  Contents stored;
  std::string recorded_checksum;
  {
    Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!file.valid()) fail(path, "is not a readable HDF5 file (truncated or corrupt?); delete it and resume from an earlier one");
    try {
      if (read_string_attribute(file.get(), "format") != kFormat) fail(path, "is not a slurmlab checkpoint");
      stored.model = read_tensors(file.get(), "model");
      stored.optimizer = read_tensors(file.get(), "optimizer");
      Handle rng(H5Gopen2(file.get(), "rng", H5P_DEFAULT), H5Gclose);
      if (!rng.valid()) throw std::runtime_error("group rng is missing");
      const hid_t root = file.get();
      stored.position.epoch = read_scalar_attribute<std::int64_t>(root, "epoch", H5T_NATIVE_INT64);
      stored.position.step = read_scalar_attribute<std::int64_t>(root, "step", H5T_NATIVE_INT64);
      stored.position.data_position = read_scalar_attribute<std::int64_t>(root, "data_position", H5T_NATIVE_INT64);
      stored.learning_rate = read_scalar_attribute<double>(root, "learning_rate", H5T_NATIVE_DOUBLE);
      stored.optimizer_steps = read_scalar_attribute<std::int64_t>(root, "optimizer_steps", H5T_NATIVE_INT64);
      stored.optimizer_kind = read_string_attribute(root, "optimizer");
      recorded_checksum = read_string_attribute(root, "checksum");
      std::vector<std::string> names;
      if (H5Aiterate2(rng.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attribute_name, &names) < 0) {
        throw std::runtime_error("cannot list the generator states");
      }
      for (const auto& name : names) stored.generators[name] = read_string_attribute(rng.get(), name);
    } catch (const std::runtime_error& e) {
      if (std::string(e.what()).rfind("checkpoint ", 0) == 0) throw;
      fail(path, std::string(e.what()) + "; the file is damaged or from another program");
    }
  }
  if (stored.checksum() != recorded_checksum) {
    fail(path, "checksum mismatch (stored " + recorded_checksum + ", computed " + stored.checksum() +
                   "): the file is corrupt; resume from an earlier checkpoint");
  }
  // Verified: now check the architecture matches before copying anything.
  const Contents current = gather(model, optimizer, stored.position, generators, Copies::none);
  auto check_same = [&](const std::map<std::string, Tensor>& want, const std::map<std::string, Tensor>& have, const char* what) {
    if (want.size() != have.size()) {
      fail(path, std::string("holds ") + std::to_string(have.size()) + " " + what + " tensors, this run has " +
                     std::to_string(want.size()) + "; was it written for another model or optimizer?");
    }
    for (const auto& [name, tensor] : want) {
      auto found = have.find(name);
      if (found == have.end()) fail(path, std::string(what) + " tensor '" + name + "' is missing; another model?");
      if (found->second.shape() != tensor.shape()) {
        fail(path, std::string(what) + " tensor '" + name + "' has shape " + to_string(found->second.shape()) +
                       ", this run expects " + to_string(tensor.shape()));
      }
    }
  };
  check_same(current.model, stored.model, "model");
  // Without an optimizer only the weights are wanted (evaluation, export): its state is skipped.
  if (optimizer) check_same(current.optimizer, stored.optimizer, "optimizer");
  for (const auto& [name, state] : current.generators)
    if (!stored.generators.contains(name)) fail(path, "holds no state for random generator '" + name + "'; another model?");
  if (optimizer && stored.optimizer_kind != optimizer->describe()) {
    fail(path, "was written by " + stored.optimizer_kind + ", this run uses " + optimizer->describe());
  }
  for (auto& p : parameters_of(model)) p.parameter->value.copy_from(stored.model.at(p.name));
  for (auto& b : buffers_of(model)) b.buffer->copy_from(stored.model.at(b.name));
  if (optimizer) {
    optimizer->visit_state([&](const std::string& name, Tensor& t) { t.copy_from(stored.optimizer.at(name)); });
    optimizer->set_learning_rate(stored.learning_rate);
    optimizer->set_steps_taken(stored.optimizer_steps);
  }
  model.visit_generators("", [&](const std::string& name, Generator& g) { g.set_state(stored.generators.at("model." + name)); });
  for (const auto& [name, g] : generators) g->set_state(stored.generators.at("extra." + name));
  return stored.position;
}

}  // namespace slurmlab::nn
