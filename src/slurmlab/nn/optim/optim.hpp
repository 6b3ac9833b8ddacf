#pragma once
// Optimizers (SGD with momentum and weight decay, Adam, AdamW) and global-norm gradient
// clipping; learning-rate schedules are in schedules.hpp. The update rules follow PyTorch's
// torch.optim line by line (same float32 operation order), so runs can be compared step for
// step.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "slurmlab/nn/layers/layer.hpp"

namespace slurmlab::nn {

class Optimizer {
 public:
  explicit Optimizer(std::vector<NamedParameter> parameters, double learning_rate);
  virtual ~Optimizer() = default;
  // One update from the gradients in Parameter::grad (already averaged across ranks).
  virtual void step() = 0;
  void zero_grad();
  // step() then zero_grad(), what a training loop does after each update; Adam on the CPU does
  // both in one pass over each gradient (the separate zeroing pass was 4% of AlexNet's step).
  virtual void step_and_zero_grad() {
    step();
    zero_grad();
  }
  double learning_rate() const { return learning_rate_; }
  void set_learning_rate(double learning_rate) { learning_rate_ = learning_rate; }
  std::int64_t steps_taken() const { return steps_; }
  void set_steps_taken(std::int64_t steps) { steps_ = steps; }
  const std::vector<NamedParameter>& parameters() const { return parameters_; }
  // Per-parameter state tensors ("0.weight.exp_avg", ...) for checkpoints.
  virtual void visit_state(const std::function<void(const std::string&, Tensor&)>& visit) = 0;
  virtual std::string describe() const = 0;

 protected:
  std::vector<NamedParameter> parameters_;
  double learning_rate_;
  std::int64_t steps_ = 0;
  // The CUDA backend's device tables of parameter pointers for its fused step (unused on CPU).
  std::shared_ptr<void> device_tables_;
};

struct SgdOptions {
  double learning_rate = 0.01;
  double momentum = 0.0;
  double weight_decay = 0.0;  // L2, added to the gradient
  double dampening = 0.0;
  bool nesterov = false;
};

class Sgd final : public Optimizer {
 public:
  Sgd(std::vector<NamedParameter> parameters, SgdOptions options);
  void step() override;
  void visit_state(const std::function<void(const std::string&, Tensor&)>& visit) override;
  std::string describe() const override { return "SGD"; }

 private:
  SgdOptions options_;
  std::vector<Tensor> momentum_;
};

struct AdamOptions {
  double learning_rate = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  // false: Adam (decay added to the gradient); true: AdamW (decoupled, p *= 1 - lr * wd).
  bool decoupled_weight_decay = false;
};

class Adam final : public Optimizer {
 public:
  Adam(std::vector<NamedParameter> parameters, AdamOptions options);
  void step() override { update(false); }
  void step_and_zero_grad() override { update(true); }
  void visit_state(const std::function<void(const std::string&, Tensor&)>& visit) override;
  std::string describe() const override { return options_.decoupled_weight_decay ? "AdamW" : "Adam"; }

 private:
  void update(bool zero_grads);

  AdamOptions options_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
};
// AdamW with PyTorch's default weight decay of 0.01.
std::unique_ptr<Optimizer> make_adamw(std::vector<NamedParameter> parameters, double learning_rate,
                                      double weight_decay = 0.01);

// Scales all gradients together so that their global L2 norm is at most max_norm (PyTorch's
// clip_grad_norm_, Lightning's gradient_clip_val); returns the norm before clipping.
double clip_gradient_norm(const std::vector<NamedParameter>& parameters, double max_norm);
// Every gradient element times `factor` (the trainer's average over accumulated batches), on
// the gradients' device, without waiting for it.
void scale_gradients(const std::vector<NamedParameter>& parameters, float factor);
// Every gradient element clamped into [-limit, limit] (PyTorch's clip_grad_value_; a NaN stays
// NaN), on the gradients' device, without waiting for it. limit > 0, else std::invalid_argument.
void clamp_gradients(const std::vector<NamedParameter>& parameters, float limit);

}  // namespace slurmlab::nn
