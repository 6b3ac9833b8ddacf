#include "slurmlab/nn/optim/optim.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "slurmlab/core/compute_pool.hpp"
#include "slurmlab/nn/optim/optim_cuda.hpp"

// OpenBLAS (linked by nn): its thread count is the process's compute-thread policy.
extern "C" int openblas_get_num_threads(void);

namespace slurmlab::nn {

Optimizer::Optimizer(std::vector<NamedParameter> parameters, double learning_rate)
    : parameters_(std::move(parameters)), learning_rate_(learning_rate) {
  if (!(learning_rate >= 0.0)) throw std::invalid_argument("optimizer: the learning rate must be non-negative");
}

void Optimizer::zero_grad() {
  for (auto& p : parameters_) p.parameter->grad.zero();
}

Sgd::Sgd(std::vector<NamedParameter> parameters, SgdOptions options)
    : Optimizer(std::move(parameters), options.learning_rate), options_(options) {
  if (options.momentum < 0.0 || options.weight_decay < 0.0) {
    throw std::invalid_argument("SGD: momentum and weight decay must be non-negative");
  }
  for (const auto& p : parameters_) {
    if (!(p.parameter->lr_scale > 0.0f) || !std::isfinite(p.parameter->lr_scale)) {
      throw std::invalid_argument("SGD: parameter " + p.name + " has learning-rate scale " +
                                  std::to_string(p.parameter->lr_scale) + "; it must be positive and finite");
    }
  }
  if (options.momentum > 0.0)
    for (auto& p : parameters_) momentum_.push_back(Tensor::zeros(p.parameter->value.shape(), p.parameter->value.device()));
}

void Sgd::step() {
  if (!parameters_.empty() && parameters_.front().parameter->value.device() == Device::cuda) {
    cuda::sgd_step(parameters_, momentum_, options_, learning_rate_, steps_, device_tables_);
    ++steps_;
    return;
  }
  const auto mu = static_cast<float>(options_.momentum);
  const auto keep = static_cast<float>(1.0 - options_.dampening);
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    if (parameters_[i].parameter->frozen) continue;  // frozen after the optimizer was made
    const double scale = parameters_[i].parameter->lr_scale;
    const auto lr = static_cast<float>(learning_rate_ * scale);
    const auto wd = static_cast<float>(options_.weight_decay / scale);
    auto value = parameters_[i].parameter->value.span();
    auto grad = parameters_[i].parameter->grad.span();
    for (std::size_t k = 0; k < value.size(); ++k) {
      float d = grad[k];
      if (wd != 0.0f) d += wd * value[k];
      if (mu != 0.0f) {
        float& buffer = momentum_[i].data()[k];
        buffer = steps_ == 0 ? d : mu * buffer + keep * d;
        d = options_.nesterov ? d + mu * buffer : buffer;
      }
      value[k] -= lr * d;
    }
  }
  ++steps_;
}

void Sgd::visit_state(const std::function<void(const std::string&, Tensor&)>& visit) {
  for (std::size_t i = 0; i < momentum_.size(); ++i) visit(parameters_[i].name + ".momentum_buffer", momentum_[i]);
}

Adam::Adam(std::vector<NamedParameter> parameters, AdamOptions options)
    : Optimizer(std::move(parameters), options.learning_rate), options_(options) {
  for (const auto& p : parameters_) {
    if (p.parameter->lr_scale != 1.0f) {
      throw std::invalid_argument("Adam: parameter " + p.name + " has a learning-rate scale (" +
                                  std::to_string(p.parameter->lr_scale) + "); per-parameter scales are SGD's only: use SGD");
    }
  }
  if (!(options.beta1 >= 0.0 && options.beta1 < 1.0 && options.beta2 >= 0.0 && options.beta2 < 1.0)) {
    throw std::invalid_argument("Adam: betas must lie in [0, 1)");
  }
  for (auto& p : parameters_) {
    exp_avg_.push_back(Tensor::zeros(p.parameter->value.shape(), p.parameter->value.device()));
    exp_avg_sq_.push_back(Tensor::zeros(p.parameter->value.shape(), p.parameter->value.device()));
  }
}

namespace {

struct AdamElements {
  float* value;
  float* grad;
  float* m;
  float* v;
  std::int64_t n;
};

struct AdamConstants {
  float b1, b2, bias_correction2_sqrt, eps, step_size, decay_factor, wd;
};

// One tensor's Adam update in one pass, SIMD (this file is built with -fno-math-errno, so
// sqrt vectorizes; the weight-decay variant is a template argument, not a branch in the loop)
// and split over the process's compute threads (OpenBLAS's count: one thread policy) by the
// ComputePool, whose idle threads sleep instead of spinning against OpenBLAS's. Every
// element's update is independent: the result is the same bit for bit on any thread count.
// ZeroGrad: the gradient is cleared as it is read (step_and_zero_grad).
template <bool Decoupled, bool Coupled, bool ZeroGrad>
void adam_range(const AdamElements& e, const AdamConstants& c, std::int64_t begin, std::int64_t end) {
  float* value = e.value;
  float* grad = e.grad;
  float* m = e.m;
  float* v = e.v;
#pragma omp simd
  for (std::int64_t k = begin; k < end; ++k) {
    float g = grad[k];
    if constexpr (ZeroGrad) grad[k] = 0.0f;
    float w = value[k];
    if constexpr (Decoupled) w *= c.decay_factor;
    if constexpr (Coupled) g += c.wd * w;
    const float mk = m[k] * c.b1 + (1.0f - c.b1) * g;     // exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    const float vk = v[k] * c.b2 + (1.0f - c.b2) * g * g;  // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
    m[k] = mk;
    v[k] = vk;
    const float denom = std::sqrt(vk) / c.bias_correction2_sqrt + c.eps;
    value[k] = w - c.step_size * (mk / denom);
  }
}

template <bool Decoupled, bool Coupled>
void adam_elements(const AdamElements& e, const AdamConstants& c, int threads, bool zero_grad) {
  // Below 64k elements waking a second thread costs more than it saves.
  const int parts = e.n >= (1 << 16) ? threads : 1;
  ComputePool::instance().run(parts, e.n, [&](std::int64_t begin, std::int64_t end) {
    if (zero_grad) {
      adam_range<Decoupled, Coupled, true>(e, c, begin, end);
    } else {
      adam_range<Decoupled, Coupled, false>(e, c, begin, end);
    }
  });
}

}  // namespace

void Adam::update(bool zero_grads) {
  ++steps_;
  const double bias_correction1 = 1.0 - std::pow(options_.beta1, static_cast<double>(steps_));
  const double bias_correction2 = 1.0 - std::pow(options_.beta2, static_cast<double>(steps_));
  const auto step_size = static_cast<float>(learning_rate_ / bias_correction1);
  const auto bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  const auto b1 = static_cast<float>(options_.beta1), b2 = static_cast<float>(options_.beta2);
  const auto eps = static_cast<float>(options_.eps);
  const auto wd = static_cast<float>(options_.weight_decay);
  const auto decay_factor = static_cast<float>(1.0 - learning_rate_ * options_.weight_decay);
  if (!parameters_.empty() && parameters_.front().parameter->value.device() == Device::cuda) {
    if (std::none_of(parameters_.begin(), parameters_.end(), [](const auto& p) { return p.parameter->frozen; })) {
      cuda::adam_step(parameters_, exp_avg_, exp_avg_sq_, options_, learning_rate_, steps_, device_tables_);
      if (zero_grads) zero_grad();
      return;
    }
    std::vector<NamedParameter> live;  // parameters frozen after the optimizer was made stay out
    std::vector<Tensor> live_avg, live_avg_sq;
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      if (parameters_[i].parameter->frozen) continue;
      live.push_back(parameters_[i]);
      live_avg.push_back(exp_avg_[i]);
      live_avg_sq.push_back(exp_avg_sq_[i]);
    }
    cuda::adam_step(live, live_avg, live_avg_sq, options_, learning_rate_, steps_, device_tables_);
    if (zero_grads) zero_grad();
    return;
  }
  const int threads = std::max(1, openblas_get_num_threads());
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    if (parameters_[i].parameter->frozen) {  // frozen after the optimizer was made: not updated
      if (zero_grads) parameters_[i].parameter->grad.zero();
      continue;
    }
    const AdamElements elements{parameters_[i].parameter->value.data(), parameters_[i].parameter->grad.data(),
                                exp_avg_[i].data(), exp_avg_sq_[i].data(), exp_avg_[i].numel()};
    const AdamConstants c{b1, b2, bias_correction2_sqrt, eps, step_size, decay_factor, wd};
    if (options_.decoupled_weight_decay) {
      adam_elements<true, false>(elements, c, threads, zero_grads);
    } else if (wd != 0.0f) {
      adam_elements<false, true>(elements, c, threads, zero_grads);
    } else {
      adam_elements<false, false>(elements, c, threads, zero_grads);
    }
  }
}

void Adam::visit_state(const std::function<void(const std::string&, Tensor&)>& visit) {
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    visit(parameters_[i].name + ".exp_avg", exp_avg_[i]);
    visit(parameters_[i].name + ".exp_avg_sq", exp_avg_sq_[i]);
  }
}

std::unique_ptr<Optimizer> make_adamw(std::vector<NamedParameter> parameters, double learning_rate,
                                      double weight_decay) {
  AdamOptions options;
  options.learning_rate = learning_rate;
  options.weight_decay = weight_decay;
  options.decoupled_weight_decay = true;
  return std::make_unique<Adam>(std::move(parameters), options);
}

namespace {
bool on_cuda(const std::vector<NamedParameter>& parameters) {
  return !parameters.empty() && parameters.front().parameter->grad.device() == Device::cuda;
}
}  // namespace

void scale_gradients(const std::vector<NamedParameter>& parameters, float factor) {
  if (on_cuda(parameters)) return cuda::scale_gradients(parameters, factor);
  for (const auto& p : parameters)
    for (float& g : p.parameter->grad.span()) g *= factor;
}

void clamp_gradients(const std::vector<NamedParameter>& parameters, float limit) {
  if (!(limit > 0.0f)) throw std::invalid_argument("gradient clipping: the value limit must be positive");
  if (on_cuda(parameters)) return cuda::clamp_gradients(parameters, limit);
  for (const auto& p : parameters)
    for (float& g : p.parameter->grad.span()) g = std::clamp(g, -limit, limit);
}

double clip_gradient_norm(const std::vector<NamedParameter>& parameters, double max_norm) {
  if (!(max_norm > 0.0)) throw std::invalid_argument("gradient clipping: max norm must be positive");
  if (on_cuda(parameters)) return cuda::clip_gradient_norm(parameters, max_norm);
  double squares = 0.0;
  for (const auto& p : parameters)
    for (float g : p.parameter->grad.span()) squares += static_cast<double>(g) * g;
  const double norm = std::sqrt(squares);
  const double coefficient = max_norm / (norm + 1e-6);
  if (coefficient < 1.0) {
    const auto c = static_cast<float>(coefficient);
    for (const auto& p : parameters)
      for (float& g : p.parameter->grad.span()) g *= c;
  }
  return norm;
}

}  // namespace slurmlab::nn
