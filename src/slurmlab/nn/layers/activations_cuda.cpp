// ActivationLayer and Dropout, CUDA backend: own kernels (cuda/kernels.cu); activations.cpp is
// the CPU reference. Host code, C++20; built only with CUDA.
#include <memory>
#include <stdexcept>

#include "slurmlab/nn/layers/cuda_support.hpp"
#include "slurmlab/nn/layers/layers_cuda.hpp"
#include "slurmlab/nn/tensor/device_memory.hpp"

namespace slurmlab::nn::cuda {
namespace {

struct SavedTensorContext final : nn::Context {
  Tensor tensor;
};

}  // namespace

// --- Activations and dropout (own kernels: element-wise, bandwidth-bound; cuDNN's
// activation functions have no exact-erf GELU, so one kernel family serves all four) ---------
Forward activation_forward(Activation kind, const Tensor& input) {
  Tensor output(input.shape(), Device::cuda);
  cuda_kernels::activation_forward(static_cast<int>(kind), input.device_data(), output.device_data(), input.numel(),
                                   stream());
  auto context = std::make_unique<SavedTensorContext>();
  context->tensor = kind == Activation::tanh ? output : input;  // as the CPU layer
  return {output, std::move(context)};
}

Tensor activation_backward(Activation kind, const nn::Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const SavedTensorContext&>(context).tensor;
  if (grad_output.numel() != saved.numel()) throw std::invalid_argument(to_string(kind) + ": gradient shape mismatch");
  Tensor grad_input(saved.shape(), Device::cuda);
  cuda_kernels::activation_backward(static_cast<int>(kind), saved.device_data(), grad_output.device_data(),
                                    grad_input.device_data(), saved.numel(), stream());
  return grad_input;
}

Forward dropout_forward(float p, Generator& generator, const Tensor& input, Mode mode) {
  if (mode == Mode::eval || p == 0.0f) return {input, std::make_unique<nn::Context>()};
  auto context = std::make_unique<SavedTensorContext>();
  context->tensor = Tensor(input.shape(), Device::cuda);
  Tensor output(input.shape(), Device::cuda);
  // One draw from the layer's generator seeds this call's Philox stream, so checkpoints that
  // restore the generator restore the masks; the masks differ from the CPU layer's.
  cuda_kernels::dropout_forward(input.device_data(), output.device_data(), context->tensor.device_data(),
                                input.numel(), p, generator.next(), stream());
  return {output, std::move(context)};
}

Tensor dropout_backward(const nn::Context& context, const Tensor& grad_output) {
  const auto* saved = dynamic_cast<const SavedTensorContext*>(&context);
  if (saved == nullptr) return grad_output;  // eval mode or p == 0: identity
  Tensor grad_input(grad_output.shape(), Device::cuda);
  cuda_kernels::multiply(grad_output.device_data(), saved->tensor.device_data(), grad_input.device_data(),
                         grad_output.numel(), stream());
  return grad_input;
}

Tensor scaled(const Tensor& x, float factor) {
  Tensor y(x.shape(), Device::cuda);
  copy(y.device_data(), Device::cuda, x.device_data(), Device::cuda, static_cast<std::size_t>(x.numel()) * sizeof(float));
  cuda_kernels::scale(y.device_data(), y.numel(), factor, stream());  // same stream as the copy
  return y;
}

}  // namespace slurmlab::nn::cuda
