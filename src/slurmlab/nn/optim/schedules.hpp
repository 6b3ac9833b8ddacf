#pragma once
// Learning-rate schedules: the rate as a function of the optimizer step, which a training loop
// sets on its Optimizer before each step (PyTorch's torch.optim.lr_scheduler, in closed form).
#include <cstdint>
#include <memory>

namespace slurmlab::nn {

// Learning rate as a function of the optimizer step (0-based).
class LearningRateSchedule {
 public:
  virtual ~LearningRateSchedule() = default;
  virtual double at(std::int64_t step) const = 0;
};

// base * gamma^(step / step_size) (PyTorch StepLR).
class StepSchedule final : public LearningRateSchedule {
 public:
  StepSchedule(double base, std::int64_t step_size, double gamma);
  double at(std::int64_t step) const override;

 private:
  double base_;
  std::int64_t step_size_;
  double gamma_;
};

// min + (base - min) * (1 + cos(pi * step / total)) / 2, held at min after `total`
// (PyTorch CosineAnnealingLR's closed form).
class CosineSchedule final : public LearningRateSchedule {
 public:
  CosineSchedule(double base, std::int64_t total_steps, double minimum = 0.0);
  double at(std::int64_t step) const override;

 private:
  double base_;
  std::int64_t total_;
  double minimum_;
};

// A triangle: base * start at step 0, rising linearly to base at int(peak * total), then
// falling linearly to base * end at `total` (held there after). airbench94's get_lr with
// peak 0.23, start 0.2, end 0.07.
class TriangleSchedule final : public LearningRateSchedule {
 public:
  TriangleSchedule(double base, std::int64_t total_steps, double peak_fraction, double start, double end);
  double at(std::int64_t step) const override;

 private:
  double base_, start_, end_;
  std::int64_t total_, peak_;
};

// Linear warm-up: the rate ramps as (step + 1) / warmup_steps times
// the inner schedule's first value, then follows the inner schedule shifted by warmup_steps.
class WarmupSchedule final : public LearningRateSchedule {
 public:
  WarmupSchedule(std::int64_t warmup_steps, std::unique_ptr<LearningRateSchedule> after);
  double at(std::int64_t step) const override;

 private:
  std::int64_t warmup_;
  std::unique_ptr<LearningRateSchedule> after_;
};

}  // namespace slurmlab::nn
