// MaxPool2d, AvgPool2d (cuDNN 9's legacy pooling API, see conv2d_cuda.cpp for why) and
// AdaptiveAvgPool2d (own kernels: cuDNN has no adaptive pooling), CUDA backend; pooling.cpp is
// the CPU reference. Host code, C++20; built only with CUDA.
#include <cudnn.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <tuple>

#include "slurmlab/nn/layers/cuda_support.hpp"
#include "slurmlab/nn/layers/layers_cuda.hpp"

namespace slurmlab::nn::cuda {
namespace {

struct PoolingDescriptor {
  cudnnPoolingDescriptor_t handle = nullptr;
  PoolingDescriptor(PoolKind kind, int kernel, int stride, int padding) {
    SLURMLAB_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&handle));
    // Average pooling has no padding here (AvgPool2d), so both average modes agree.
    SLURMLAB_CUDNN_CHECK(cudnnSetPooling2dDescriptor(
        handle, kind == PoolKind::max ? CUDNN_POOLING_MAX : CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING,
        CUDNN_PROPAGATE_NAN, kernel, kernel, padding, padding, stride, stride));
  }
  ~PoolingDescriptor() { cudnnDestroyPoolingDescriptor(handle); }
  PoolingDescriptor(const PoolingDescriptor&) = delete;
  PoolingDescriptor& operator=(const PoolingDescriptor&) = delete;
};

struct PoolContext final : nn::Context {
  Tensor input, output;
  PoolKind kind{};
  std::int64_t kernel = 0, stride = 0, padding = 0;
};

struct AdaptivePoolContext final : nn::Context {
  Shape input_shape;
  std::int64_t out_h = 0, out_w = 0;
};

using PoolKey = std::tuple<int, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                           std::int64_t>;  // kind, n, c, h, w, kernel, stride, padding
struct PoolPlan {
  PoolingDescriptor pool;
  TensorDescriptor x, y;
  Shape output_shape;
  PoolPlan(PoolKind kind, std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w, std::int64_t kernel,
           std::int64_t stride, std::int64_t padding)
      : pool(kind, as_int(kernel, "kernel"), as_int(stride, "stride"), as_int(padding, "padding")), x(n, c, h, w), y() {
    int on = 0, oc = 0, oh = 0, ow = 0;
    SLURMLAB_CUDNN_CHECK(cudnnGetPooling2dForwardOutputDim(pool.handle, x.handle, &on, &oc, &oh, &ow));
    SLURMLAB_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y.handle, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, on, oc, oh, ow));
    output_shape = {on, oc, oh, ow};
  }
};
PoolPlan& pool_plan(const PoolKey& key) {
  static std::map<PoolKey, std::unique_ptr<PoolPlan>> plans;
  auto& slot = plans[key];
  if (!slot) {
    const auto& [kind, n, c, h, w, kernel, stride, padding] = key;
    slot = std::make_unique<PoolPlan>(static_cast<PoolKind>(kind), n, c, h, w, kernel, stride, padding);
  }
  return *slot;
}
PoolKey pool_key(PoolKind kind, const Shape& shape, std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  return {static_cast<int>(kind), shape[0], shape[1], shape[2], shape[3], kernel, stride, padding};
}
}  // namespace

Forward pool_forward(PoolKind kind, std::int64_t kernel, std::int64_t stride, std::int64_t padding,
                     const Tensor& input) {
  auto& plan = pool_plan(pool_key(kind, input.shape(), kernel, stride, padding));
  Tensor output(plan.output_shape, Device::cuda);
  const float one = 1.0f, zero = 0.0f;
  SLURMLAB_CUDNN_CHECK(cudnnPoolingForward(dnn(), plan.pool.handle, &one, plan.x.handle, input.device_data(), &zero,
                                           plan.y.handle, output.device_data()));
  auto context = std::make_unique<PoolContext>();
  context->input = input;
  context->output = output;
  context->kind = kind;
  context->kernel = kernel;
  context->stride = stride;
  context->padding = padding;
  return {output, std::move(context)};
}

Tensor pool_backward(const nn::Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const PoolContext&>(context);
  auto& plan = pool_plan(pool_key(saved.kind, saved.input.shape(), saved.kernel, saved.stride, saved.padding));
  if (grad_output.shape() != plan.output_shape) throw std::invalid_argument("pooling: gradient shape mismatch");
  Tensor grad_input(saved.input.shape(), Device::cuda);
  const float one = 1.0f, zero = 0.0f;
  SLURMLAB_CUDNN_CHECK(cudnnPoolingBackward(dnn(), plan.pool.handle, &one, plan.y.handle, saved.output.device_data(),
                                            plan.y.handle, grad_output.device_data(), plan.x.handle,
                                            saved.input.device_data(), &zero, plan.x.handle,
                                            grad_input.device_data()));
  return grad_input;
}

// cuDNN has no adaptive pooling: own kernels with PyTorch's bins.
Forward adaptive_avg_pool_forward(std::int64_t out_h, std::int64_t out_w, const Tensor& input) {
  const auto n = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3);
  Tensor output({n, c, out_h, out_w}, Device::cuda);
  cuda_kernels::adaptive_avg_pool_forward(input.device_data(), output.device_data(), n * c, h, w, out_h, out_w,
                                          stream());
  auto context = std::make_unique<AdaptivePoolContext>();
  context->input_shape = input.shape();
  context->out_h = out_h;
  context->out_w = out_w;
  return {output, std::move(context)};
}

Tensor adaptive_avg_pool_backward(const nn::Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const AdaptivePoolContext&>(context);
  const auto& s = saved.input_shape;
  if (grad_output.shape() != Shape{s[0], s[1], saved.out_h, saved.out_w})
    throw std::invalid_argument("AdaptiveAvgPool2d: gradient shape mismatch");
  Tensor grad_input(s, Device::cuda);
  cuda_kernels::adaptive_avg_pool_backward(grad_output.device_data(), grad_input.device_data(), s[0] * s[1], s[2],
                                           s[3], saved.out_h, saved.out_w, stream());
  return grad_input;
}

}  // namespace slurmlab::nn::cuda
