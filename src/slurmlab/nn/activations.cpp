// Element-wise layers, CPU backend: activations, Flatten, Dropout.
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "slurmlab/nn/layers.hpp"

namespace slurmlab::nn {

std::string to_string(Activation activation) {
  switch (activation) {
    case Activation::relu: return "ReLU";
    case Activation::tanh: return "Tanh";
    case Activation::gelu: return "GELU";
    case Activation::silu: return "SiLU";
  }
  return "?";
}

namespace {
struct SavedTensor final : Context {
  Tensor tensor;
};
struct SavedShape final : Context {
  Shape shape;
};

// Standard normal density and distribution, for the exact GELU.
float normal_pdf(float x) { return std::exp(-0.5f * x * x) * (1.0f / std::sqrt(2.0f * std::numbers::pi_v<float>)); }
float normal_cdf(float x) { return 0.5f * (1.0f + std::erf(x * std::numbers::sqrt2_v<float> * 0.5f)); }
float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
}  // namespace

Forward ActivationLayer::forward(const Tensor& input, Mode) {
  require_cpu(input, describe());
  Tensor output(input.shape());
  const auto x = input.span();
  auto y = output.span();
  switch (kind_) {
    case Activation::relu:
      for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
      break;
    case Activation::tanh:
      for (std::size_t i = 0; i < x.size(); ++i) y[i] = std::tanh(x[i]);
      break;
    case Activation::gelu:
      for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * normal_cdf(x[i]);
      break;
    case Activation::silu:
      for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * sigmoid(x[i]);
      break;
  }
  auto context = std::make_unique<SavedTensor>();
  // tanh's derivative needs only the output; the others need the input.
  context->tensor = kind_ == Activation::tanh ? output : input;
  return {output, std::move(context)};
}

Tensor ActivationLayer::backward(const Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const SavedTensor&>(context).tensor;
  if (grad_output.numel() != saved.numel()) throw std::invalid_argument(describe() + ": gradient shape mismatch");
  Tensor grad_input(saved.shape());
  const auto s = saved.span();
  const auto g = grad_output.span();
  auto d = grad_input.span();
  switch (kind_) {
    case Activation::relu:
      for (std::size_t i = 0; i < s.size(); ++i) d[i] = s[i] > 0.0f ? g[i] : 0.0f;
      break;
    case Activation::tanh:
      for (std::size_t i = 0; i < s.size(); ++i) d[i] = g[i] * (1.0f - s[i] * s[i]);
      break;
    case Activation::gelu:
      for (std::size_t i = 0; i < s.size(); ++i) d[i] = g[i] * (normal_cdf(s[i]) + s[i] * normal_pdf(s[i]));
      break;
    case Activation::silu:
      for (std::size_t i = 0; i < s.size(); ++i) {
        const float sg = sigmoid(s[i]);
        d[i] = g[i] * sg * (1.0f + s[i] * (1.0f - sg));
      }
      break;
  }
  return grad_input;
}

Forward Flatten::forward(const Tensor& input, Mode) {
  if (input.dim() < 2) throw std::invalid_argument("Flatten: expected [N, ...], got " + to_string(input.shape()));
  auto context = std::make_unique<SavedShape>();
  context->shape = input.shape();
  return {input.reshape({input.size(0), -1}), std::move(context)};
}

Tensor Flatten::backward(const Context& context, const Tensor& grad_output) {
  return grad_output.reshape(dynamic_cast<const SavedShape&>(context).shape);
}

Dropout::Dropout(float p, std::uint64_t seed) : p_(p), generator_(seed) {
  if (!(p >= 0.0f && p < 1.0f)) throw std::invalid_argument("Dropout: p must lie in [0, 1)");
}

std::string Dropout::describe() const { return "Dropout(p=" + std::to_string(p_) + ")"; }

void Dropout::visit_generators(const std::string& prefix, const GeneratorVisitor& visit) {
  visit(join_name(prefix, "generator"), generator_);
}

Forward Dropout::forward(const Tensor& input, Mode mode) {
  require_cpu(input, "Dropout");
  if (mode == Mode::eval || p_ == 0.0f) return {input, std::make_unique<Context>()};
  auto context = std::make_unique<SavedTensor>();
  context->tensor = Tensor(input.shape());
  const float keep_scale = 1.0f / (1.0f - p_);
  for (auto& m : context->tensor.span()) m = generator_.uniform(0.0f, 1.0f) < p_ ? 0.0f : keep_scale;
  Tensor output(input.shape());
  const auto x = input.span();
  const auto m = context->tensor.span();
  auto y = output.span();
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * m[i];
  return {output, std::move(context)};
}

Tensor Dropout::backward(const Context& context, const Tensor& grad_output) {
  const auto* saved = dynamic_cast<const SavedTensor*>(&context);
  if (saved == nullptr) return grad_output;  // eval mode or p == 0: identity
  Tensor grad_input(grad_output.shape());
  const auto g = grad_output.span();
  const auto m = saved->tensor.span();
  auto d = grad_input.span();
  for (std::size_t i = 0; i < g.size(); ++i) d[i] = g[i] * m[i];
  return grad_input;
}

}  // namespace slurmlab::nn
