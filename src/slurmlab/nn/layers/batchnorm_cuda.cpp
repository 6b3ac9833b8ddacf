// BatchNorm1d/2d, CUDA backend: cuDNN 9's batch normalization (legacy API, see conv2d_cuda.cpp
// for why) in train mode and eval forward, an own kernel for the eval backward; batchnorm.cpp
// is the CPU reference. Host code, C++20; built only with CUDA.
#include <cudnn.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "slurmlab/nn/layers/cuda_support.hpp"
#include "slurmlab/nn/layers/layers_cuda.hpp"

namespace slurmlab::nn::cuda {
namespace {

struct BatchNormContext final : nn::Context {
  Tensor input, save_mean, save_inv_variance;
  Mode mode{};
  float eps = 0.0f;
};

struct BatchNormDescriptors {
  TensorDescriptor x, parameters;
  BatchNormDescriptors(const Shape& shape, std::int64_t channels)
      : x(shape[0], channels, element_count(shape) / (shape[0] * channels), 1), parameters() {
    SLURMLAB_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(parameters.handle, x.handle, CUDNN_BATCHNORM_SPATIAL));
  }
};
BatchNormDescriptors& batch_norm_descriptors(const Shape& shape, std::int64_t channels) {
  static std::map<Shape, std::unique_ptr<BatchNormDescriptors>> cache;
  auto& slot = cache[shape];
  if (!slot) slot = std::make_unique<BatchNormDescriptors>(shape, channels);
  return *slot;
}
}  // namespace

Forward batch_norm_forward(BatchNorm& layer, float eps, float momentum, const Tensor& input, Mode mode) {
  require_cuda(layer.weight().value, layer.describe());
  // cuDNN 9's minimum is 0 (cuDNN 7 had 1e-5, which float 1e-5f, the default, is below).
  if (!(static_cast<double>(eps) >= CUDNN_BN_MIN_EPSILON)) {
    throw std::invalid_argument(layer.describe() + ": eps " + std::to_string(eps) + " is below cuDNN's minimum of " +
                                std::to_string(CUDNN_BN_MIN_EPSILON) + "; use a larger eps on CUDA");
  }
  const auto channels = input.size(1);
  auto& descriptors = batch_norm_descriptors(input.shape(), channels);
  Tensor output(input.shape(), Device::cuda);
  const float one = 1.0f, zero = 0.0f;
  auto context = std::make_unique<BatchNormContext>();
  context->mode = mode;
  context->eps = eps;
  context->input = input;
  if (mode == Mode::train) {
    context->save_mean = Tensor({channels}, Device::cuda);
    context->save_inv_variance = Tensor({channels}, Device::cuda);
    // cuDNN updates the running variance with the unbiased batch variance, as PyTorch.
    SLURMLAB_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
        dnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, descriptors.x.handle, input.device_data(), descriptors.x.handle,
        output.device_data(), descriptors.parameters.handle, layer.weight().value.device_data(),
        layer.bias().value.device_data(), static_cast<double>(momentum), layer.running_mean().device_data(),
        layer.running_var().device_data(), static_cast<double>(eps), context->save_mean.device_data(),
        context->save_inv_variance.device_data()));
    cuda_kernels::add_scalar(layer.batches_tracked().device_data(), 1, 1.0f, stream());
  } else {
    SLURMLAB_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
        dnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, descriptors.x.handle, input.device_data(), descriptors.x.handle,
        output.device_data(), descriptors.parameters.handle, layer.weight().value.device_data(),
        layer.bias().value.device_data(), layer.running_mean().device_data(), layer.running_var().device_data(),
        static_cast<double>(eps)));
  }
  return {output, std::move(context)};
}

Tensor batch_norm_backward(BatchNorm& layer, const nn::Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const BatchNormContext&>(context);
  if (grad_output.shape() != saved.input.shape()) throw std::invalid_argument(layer.describe() + ": gradient shape mismatch");
  if (saved.mode != Mode::train) {
    const auto& shape = saved.input.shape();
    const auto channels = shape[1];
    Tensor grad_input(shape, Device::cuda);
    cuda_kernels::batch_norm_eval_backward(
        saved.input.device_data(), grad_output.device_data(), layer.weight().value.device_data(),
        layer.running_mean().device_data(), layer.running_var().device_data(), saved.eps, shape[0], channels,
        element_count(shape) / (shape[0] * channels), grad_input.device_data(), layer.weight().grad.device_data(),
        layer.bias().grad.device_data(), stream());
    return grad_input;
  }
  auto& descriptors = batch_norm_descriptors(saved.input.shape(), saved.input.size(1));
  Tensor grad_input(saved.input.shape(), Device::cuda);
  const float one = 1.0f, zero = 0.0f;
  // alphaParamDiff = betaParamDiff = 1: the weight and bias gradients accumulate.
  SLURMLAB_CUDNN_CHECK(cudnnBatchNormalizationBackward(
      dnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &one, descriptors.x.handle, saved.input.device_data(),
      descriptors.x.handle, grad_output.device_data(), descriptors.x.handle, grad_input.device_data(),
      descriptors.parameters.handle, layer.weight().value.device_data(), layer.weight().grad.device_data(),
      layer.bias().grad.device_data(), static_cast<double>(saved.eps), saved.save_mean.device_data(),
      saved.save_inv_variance.device_data()));
  return grad_input;
}

}  // namespace slurmlab::nn::cuda
