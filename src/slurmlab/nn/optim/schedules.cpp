#include "slurmlab/nn/optim/schedules.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <utility>

namespace slurmlab::nn {

StepSchedule::StepSchedule(double base, std::int64_t step_size, double gamma)
    : base_(base), step_size_(step_size), gamma_(gamma) {
  if (step_size <= 0) throw std::invalid_argument("StepSchedule: step size must be positive");
}
double StepSchedule::at(std::int64_t step) const {
  return base_ * std::pow(gamma_, static_cast<double>(step / step_size_));
}

CosineSchedule::CosineSchedule(double base, std::int64_t total_steps, double minimum)
    : base_(base), total_(total_steps), minimum_(minimum) {
  if (total_steps <= 0) throw std::invalid_argument("CosineSchedule: total steps must be positive");
}
double CosineSchedule::at(std::int64_t step) const {
  if (step >= total_) return minimum_;
  const double phase = std::numbers::pi * static_cast<double>(step) / static_cast<double>(total_);
  return minimum_ + (base_ - minimum_) * (1.0 + std::cos(phase)) / 2.0;
}

TriangleSchedule::TriangleSchedule(double base, std::int64_t total_steps, double peak_fraction, double start,
                                   double end)
    : base_(base), start_(start), end_(end), total_(total_steps),
      peak_(static_cast<std::int64_t>(static_cast<double>(total_steps) * peak_fraction)) {
  if (total_steps < 1 || !(peak_fraction >= 0.0 && peak_fraction < 1.0)) {
    throw std::invalid_argument("TriangleSchedule: needs at least 1 step and a peak fraction in [0, 1)");
  }
}

double TriangleSchedule::at(std::int64_t step) const {
  if (step < peak_) {
    const double frac = static_cast<double>(step) / static_cast<double>(peak_);
    return base_ * (start_ * (1.0 - frac) + frac);
  }
  const double frac = std::min(1.0, static_cast<double>(step - peak_) / static_cast<double>(total_ - peak_));
  return base_ * ((1.0 - frac) + end_ * frac);
}

WarmupSchedule::WarmupSchedule(std::int64_t warmup_steps, std::unique_ptr<LearningRateSchedule> after)
    : warmup_(warmup_steps), after_(std::move(after)) {
  if (warmup_steps < 0 || !after_) throw std::invalid_argument("WarmupSchedule: needs warmup >= 0 and a schedule");
}
double WarmupSchedule::at(std::int64_t step) const {
  if (step < warmup_) return after_->at(0) * static_cast<double>(step + 1) / static_cast<double>(warmup_);
  return after_->at(step - warmup_);
}

}  // namespace slurmlab::nn
