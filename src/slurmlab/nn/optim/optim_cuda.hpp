#pragma once
// The CUDA paths of the optimizers and of gradient clipping (optim.cpp calls them when the
// parameters are on Device::cuda): one fused launch over all parameters. `state` keeps the
// device pointer tables between steps (rebuilt only when a tensor's storage changes).
// Internal to slurmlab::nn; defined in optim_cuda.cpp, or in optim_nocuda.cpp (throwing
// cuda::kNoCudaBackend) in a build without CUDA.
#include <cstdint>
#include <memory>
#include <vector>

#include "slurmlab/nn/optim/optim.hpp"

namespace slurmlab::nn::cuda {

void sgd_step(const std::vector<NamedParameter>& parameters, std::vector<Tensor>& momentum, const SgdOptions& options,
              double learning_rate, std::int64_t steps_taken, std::shared_ptr<void>& state);
void adam_step(const std::vector<NamedParameter>& parameters, std::vector<Tensor>& exp_avg,
               std::vector<Tensor>& exp_avg_sq, const AdamOptions& options, double learning_rate,
               std::int64_t steps_taken, std::shared_ptr<void>& state);
double clip_gradient_norm(const std::vector<NamedParameter>& parameters, double max_norm);
void scale_gradients(const std::vector<NamedParameter>& parameters, float factor);
void clamp_gradients(const std::vector<NamedParameter>& parameters, float limit);

}  // namespace slurmlab::nn::cuda
