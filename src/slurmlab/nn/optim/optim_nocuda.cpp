// Built without CUDA: no CUDA optimizer steps (see optim_cuda.hpp).
#include <stdexcept>

#include "slurmlab/nn/optim/optim_cuda.hpp"
#include "slurmlab/nn/tensor/device_memory.hpp"

namespace slurmlab::nn::cuda {

void sgd_step(const std::vector<NamedParameter>&, std::vector<Tensor>&, const SgdOptions&, double, std::int64_t,
              std::shared_ptr<void>&) {
  throw std::runtime_error(kNoCudaBackend);
}
void adam_step(const std::vector<NamedParameter>&, std::vector<Tensor>&, std::vector<Tensor>&, const AdamOptions&,
               double, std::int64_t, std::shared_ptr<void>&) {
  throw std::runtime_error(kNoCudaBackend);
}
double clip_gradient_norm(const std::vector<NamedParameter>&, double) {
  throw std::runtime_error(kNoCudaBackend);
}
void scale_gradients(const std::vector<NamedParameter>&, float) {
  throw std::runtime_error(kNoCudaBackend);
}
void clamp_gradients(const std::vector<NamedParameter>&, float) {
  throw std::runtime_error(kNoCudaBackend);
}

}  // namespace slurmlab::nn::cuda
