// CUDA backend of the optimizers and of gradient clipping: one fused launch over all
// parameters (cuda/kernels.cu). optim.cpp is the CPU reference; built only with CUDA
// (optim_nocuda.cpp otherwise).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <vector>

#include "slurmlab/nn/cuda/context.hpp"
#include "slurmlab/nn/cuda/kernels.hpp"
#include "slurmlab/nn/optim/optim_cuda.hpp"
#include "slurmlab/nn/tensor/device_memory.hpp"

namespace slurmlab::nn::cuda {
namespace {

cudaStream_t stream() { return Context::get().stream(); }

// Device tables of the parameter tensors for the fused optimizer kernels, rebuilt only when a
// tensor's storage moves (after to_device or a checkpoint load).
struct FusedTables {
  std::vector<std::intptr_t> keys;  // table_keys() of the view the tables were built from
  Tensor pointers;                 // 4 * count pointers (values, grads, state0, state1)
  Tensor offsets;                  // count + 1 int64
  cuda_kernels::TensorList list;
};

// The host view the tables are built from: every pointer and every size (a storage address
// can come back from the allocator's cache for another tensor of another size).
std::vector<std::intptr_t> table_keys(const std::vector<NamedParameter>& parameters, const std::vector<Tensor>* state0,
                                      const std::vector<Tensor>* state1) {
  std::vector<std::intptr_t> keys;
  auto address = [](const float* p) { return reinterpret_cast<std::intptr_t>(p); };
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    keys.push_back(address(parameters[i].parameter->value.device_data()));
    keys.push_back(address(parameters[i].parameter->grad.device_data()));
    keys.push_back(state0 ? address((*state0)[i].device_data()) : 0);
    keys.push_back(state1 ? address((*state1)[i].device_data()) : 0);
    keys.push_back(static_cast<std::intptr_t>(parameters[i].parameter->value.numel()));
  }
  return keys;
}

cuda_kernels::TensorList& fused_tables(std::shared_ptr<void>& state, const std::vector<NamedParameter>& parameters,
                                       std::vector<Tensor>* state0, std::vector<Tensor>* state1) {
  auto keys = table_keys(parameters, state0, state1);
  auto tables = std::static_pointer_cast<FusedTables>(state);
  if (tables && tables->keys == keys) return tables->list;
  for (const auto& p : parameters) {
    if (p.parameter->value.device() != Device::cuda || p.parameter->grad.device() != Device::cuda) {
      throw std::invalid_argument("optimizer: parameter " + p.name +
                                  " is not on cuda while others are; move the whole model with nn::to_device");
    }
  }
  tables = std::make_shared<FusedTables>();
  const auto count = parameters.size();
  std::vector<float*> pointers(4 * count);
  std::vector<std::int64_t> offsets(count + 1, 0);
  for (std::size_t i = 0; i < count; ++i) {
    pointers[i] = parameters[i].parameter->value.device_data();
    pointers[count + i] = parameters[i].parameter->grad.device_data();
    pointers[2 * count + i] = state0 ? (*state0)[i].device_data() : nullptr;
    pointers[3 * count + i] = state1 ? (*state1)[i].device_data() : nullptr;
    offsets[i + 1] = offsets[i] + parameters[i].parameter->value.numel();
  }
  static_assert(sizeof(float*) == 2 * sizeof(float) && sizeof(std::int64_t) == 2 * sizeof(float));
  tables->pointers = Tensor({static_cast<std::int64_t>(8 * count)}, Device::cuda);
  tables->offsets = Tensor({static_cast<std::int64_t>(2 * (count + 1))}, Device::cuda);
  copy(tables->pointers.device_data(), Device::cuda, pointers.data(), Device::cpu, pointers.size() * sizeof(float*));
  copy(tables->offsets.device_data(), Device::cuda, offsets.data(), Device::cpu, offsets.size() * sizeof(std::int64_t));
  auto** base = reinterpret_cast<float**>(tables->pointers.device_data());
  tables->list.values = base;
  tables->list.grads = base + count;
  tables->list.state0 = state0 ? base + 2 * count : nullptr;
  tables->list.state1 = state1 ? base + 3 * count : nullptr;
  tables->list.offsets = reinterpret_cast<const std::int64_t*>(tables->offsets.device_data());
  tables->list.count = static_cast<int>(count);
  tables->list.total = offsets.back();
  tables->keys = std::move(keys);
  state = tables;
  return tables->list;
}

// Parameters with different Parameter::lr_scale step as separate fused launches (one per
// scale, like PyTorch's parameter groups), each with its own cached device tables. The groups'
// lists are rebuilt every step from the optimizer's current tensors (a checkpoint load may
// have replaced them); fused_tables rebuilds a group's tables when its tensors changed.
struct SgdGroupTables {
  std::vector<float> scales;
  std::vector<std::shared_ptr<void>> tables;
};

}  // namespace

void sgd_step(const std::vector<NamedParameter>& parameters, std::vector<Tensor>& momentum, const SgdOptions& options,
              double learning_rate, std::int64_t steps_taken, std::shared_ptr<void>& state) {
  const bool with_momentum = options.momentum != 0.0;
  std::vector<float> scales;
  std::vector<std::vector<NamedParameter>> group_parameters;
  std::vector<std::vector<Tensor>> group_momentum;
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    if (parameters[i].parameter->frozen) continue;  // frozen after the optimizer was made
    const float scale = parameters[i].parameter->lr_scale;
    const auto at = static_cast<std::size_t>(std::find(scales.begin(), scales.end(), scale) - scales.begin());
    if (at == scales.size()) {
      scales.push_back(scale);
      group_parameters.emplace_back();
      group_momentum.emplace_back();
    }
    group_parameters[at].push_back(parameters[i]);
    if (with_momentum) group_momentum[at].push_back(momentum[i]);
  }
  auto groups = std::static_pointer_cast<SgdGroupTables>(state);
  if (!groups || groups->scales != scales) {
    groups = std::make_shared<SgdGroupTables>();
    groups->scales = scales;
    groups->tables.resize(scales.size());
    state = groups;
  }
  for (std::size_t g = 0; g < scales.size(); ++g) {
    const double scale = scales[g];
    const auto& list =
        fused_tables(groups->tables[g], group_parameters[g], with_momentum ? &group_momentum[g] : nullptr, nullptr);
    cuda_kernels::SgdStep step{static_cast<float>(learning_rate * scale),
                               static_cast<float>(options.weight_decay / scale), static_cast<float>(options.momentum),
                               static_cast<float>(1.0 - options.dampening), options.nesterov, steps_taken == 0};
    cuda_kernels::sgd_step(list, step, stream());
  }
}

void adam_step(const std::vector<NamedParameter>& parameters, std::vector<Tensor>& exp_avg,
               std::vector<Tensor>& exp_avg_sq, const AdamOptions& options, double learning_rate,
               std::int64_t steps_taken, std::shared_ptr<void>& state) {
  const auto& list = fused_tables(state, parameters, &exp_avg, &exp_avg_sq);
  // steps_taken already counts this step (as Adam::step's CPU loop sees it).
  const double bias_correction1 = 1.0 - std::pow(options.beta1, static_cast<double>(steps_taken));
  const double bias_correction2 = 1.0 - std::pow(options.beta2, static_cast<double>(steps_taken));
  cuda_kernels::AdamStep step{static_cast<float>(learning_rate / bias_correction1),
                              static_cast<float>(std::sqrt(bias_correction2)),
                              static_cast<float>(options.beta1),
                              static_cast<float>(options.beta2),
                              static_cast<float>(options.eps),
                              static_cast<float>(options.weight_decay),
                              static_cast<float>(1.0 - learning_rate * options.weight_decay),
                              options.decoupled_weight_decay};
  cuda_kernels::adam_step(list, step, stream());
}

// The gradient operations below run every step of a training that uses them: they share the
// tables of the last parameter list (rebuilt, with two host copies, only when it changes).
cuda_kernels::TensorList& gradient_tables(const std::vector<NamedParameter>& parameters) {
  static std::shared_ptr<void> state;
  return fused_tables(state, parameters, nullptr, nullptr);
}

void scale_gradients(const std::vector<NamedParameter>& parameters, float factor) {
  cuda_kernels::scale_all(gradient_tables(parameters), factor, stream());
}

void clamp_gradients(const std::vector<NamedParameter>& parameters, float limit) {
  cuda_kernels::clamp_all(gradient_tables(parameters), limit, stream());
}

double clip_gradient_norm(const std::vector<NamedParameter>& parameters, double max_norm) {
  const auto& list = gradient_tables(parameters);
  double* sum = Context::get().scalar_doubles() + 1;
  SLURMLAB_CUDA_CHECK(cudaMemsetAsync(sum, 0, sizeof(double), stream()));
  cuda_kernels::squared_norm(list, sum, stream());
  const double norm = std::sqrt(read_double(sum));
  const double coefficient = max_norm / (norm + 1e-6);
  if (coefficient < 1.0) cuda_kernels::scale_all(list, static_cast<float>(coefficient), stream());
  return norm;
}

}  // namespace slurmlab::nn::cuda
