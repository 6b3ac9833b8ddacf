// Linear, CPU backend: one SGEMM per product (OpenBLAS, threaded).
#include <cblas.h>

#include <cmath>
#include <stdexcept>

#include "slurmlab/nn/layers.hpp"

namespace slurmlab::nn {

void require_shape(const Tensor& input, std::int64_t rank, std::int64_t channels, const std::string& layer) {
  if (!input.defined()) throw std::invalid_argument(layer + ": input tensor is undefined");
  if (input.dim() != rank || (channels >= 0 && input.size(1) != channels)) {
    throw std::invalid_argument(layer + ": expected a " + std::to_string(rank) + "-d input" +
                                (channels >= 0 ? " with " + std::to_string(channels) + " channels on axis 1" : "") +
                                ", got shape " + to_string(input.shape()));
  }
}

void require_cpu(const Tensor& tensor, const std::string& layer) {
  if (tensor.device() != Device::cpu) {
    throw std::logic_error(layer + ": this build has no CUDA kernel for this layer; run with --device cpu");
  }
}

namespace {
void fill_uniform(Tensor& tensor, float bound, Generator& generator) {
  for (auto& value : tensor.span()) value = generator.uniform(-bound, bound);
}

struct LinearContext final : Context {
  Tensor input;  // [N, in]
};
}  // namespace

Linear::Linear(std::int64_t in_features, std::int64_t out_features, Generator& init, bool bias)
    : in_(in_features), out_(out_features), has_bias_(bias), weight_({out_features, in_features}),
      bias_({bias ? out_features : 0}) {
  if (in_features <= 0 || out_features <= 0) throw std::invalid_argument("Linear: feature counts must be positive");
  // Kaiming-uniform with a = sqrt(5): gain sqrt(2/(1+5)), bound gain*sqrt(3/fan_in) = 1/sqrt(fan_in).
  const float bound = 1.0f / std::sqrt(static_cast<float>(in_features));
  fill_uniform(weight_.value, bound, init);
  if (has_bias_) fill_uniform(bias_.value, bound, init);
}

std::string Linear::describe() const {
  return "Linear(" + std::to_string(in_) + ", " + std::to_string(out_) + (has_bias_ ? ")" : ", bias=False)");
}

void Linear::visit_parameters(const std::string& prefix, const ParameterVisitor& visit) {
  visit(join_name(prefix, "weight"), weight_);
  if (has_bias_) visit(join_name(prefix, "bias"), bias_);
}

Forward Linear::forward(const Tensor& input, Mode) {
  require_shape(input, 2, -1, describe());
  require_cpu(input, "Linear");
  if (input.size(1) != in_) {
    throw std::invalid_argument(describe() + ": input has " + std::to_string(input.size(1)) + " features");
  }
  const auto n = input.size(0);
  Tensor output({n, out_});
  float* y = output.data();
  if (has_bias_) {
    const float* b = bias_.value.data();
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t o = 0; o < out_; ++o) y[i * out_ + o] = b[o];
  }
  // y[N, out] (+)= x[N, in] * W[out, in]^T
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(out_),
              static_cast<int>(in_), 1.0f, input.data(), static_cast<int>(in_), weight_.value.data(),
              static_cast<int>(in_), has_bias_ ? 1.0f : 0.0f, y, static_cast<int>(out_));
  auto context = std::make_unique<LinearContext>();
  context->input = input;
  return {output, std::move(context)};
}

Tensor Linear::backward(const Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const LinearContext&>(context);
  const auto n = saved.input.size(0);
  if (grad_output.shape() != Shape{n, out_}) throw std::invalid_argument(describe() + ": gradient shape mismatch");
  const float* g = grad_output.data();
  // dW[out, in] += g[N, out]^T * x[N, in]
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(out_), static_cast<int>(in_),
              static_cast<int>(n), 1.0f, g, static_cast<int>(out_), saved.input.data(), static_cast<int>(in_), 1.0f,
              weight_.grad.data(), static_cast<int>(in_));
  if (has_bias_) {
    float* db = bias_.grad.data();
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t o = 0; o < out_; ++o) db[o] += g[i * out_ + o];
  }
  // dx[N, in] = g[N, out] * W[out, in]
  Tensor grad_input({n, in_});
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n), static_cast<int>(in_),
              static_cast<int>(out_), 1.0f, g, static_cast<int>(out_), weight_.value.data(), static_cast<int>(in_),
              0.0f, grad_input.data(), static_cast<int>(in_));
  return grad_input;
}

}  // namespace slurmlab::nn
