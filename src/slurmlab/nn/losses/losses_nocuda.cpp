// Built without CUDA: no CUDA losses (see losses_cuda.hpp).
#include <stdexcept>

#include "slurmlab/nn/losses/losses_cuda.hpp"
#include "slurmlab/nn/tensor/device_memory.hpp"

namespace slurmlab::nn::cuda {

LossResult mse_loss(const Tensor&, const Tensor&, std::span<const float>) {
  throw std::runtime_error(kNoCudaBackend);
}
LossResult softmax_cross_entropy(const Tensor&, std::span<const std::int64_t>, double) {
  throw std::runtime_error(kNoCudaBackend);
}
std::int64_t correct_predictions(const Tensor&, std::span<const std::int64_t>) {
  throw std::runtime_error(kNoCudaBackend);
}
ClassificationLoss softmax_cross_entropy_pending(const Tensor&, std::span<const std::int64_t>, const DeviceLabels&,
                                                 double) {
  throw std::runtime_error(kNoCudaBackend);
}

}  // namespace slurmlab::nn::cuda
