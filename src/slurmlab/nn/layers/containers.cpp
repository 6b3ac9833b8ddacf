// Sequential and Residual: device-independent, they only route tensors and contexts (the
// residual sum on CUDA: containers_cuda.cpp).
#include <stdexcept>

#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/layers/layers_cuda.hpp"

namespace slurmlab::nn {

namespace {
struct SequentialContext final : Context {
  std::vector<std::unique_ptr<Context>> children;
};
struct ResidualContext final : Context {
  std::unique_ptr<Context> body, shortcut;
};

Tensor add(const Tensor& a, const Tensor& b, const std::string& where) {
  if (a.shape() != b.shape()) {
    throw std::invalid_argument(where + ": shapes " + to_string(a.shape()) + " and " + to_string(b.shape()) +
                                " differ; give the Residual a shortcut that matches the body's output");
  }
  if (a.device() == Device::cuda) return cuda::add(a, b);
  Tensor sum(a.shape());
  const auto x = a.span(), y = b.span();
  auto s = sum.span();
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = x[i] + y[i];
  return sum;
}

// The child as an activation that may run in place (ReLU, tanh), or null.
ActivationLayer* in_place_activation(Layer& child) {
  auto* activation = dynamic_cast<ActivationLayer*>(&child);
  return activation != nullptr && activation->runs_in_place() ? activation : nullptr;
}
}  // namespace

Sequential& Sequential::add(std::unique_ptr<Layer> layer) { return add(std::to_string(children_.size()), std::move(layer)); }

Sequential& Sequential::add(std::string name, std::unique_ptr<Layer> layer) {
  if (!layer) throw std::invalid_argument("Sequential::add: null layer");
  if (children_.empty() && !input_grad_needed()) layer->set_input_grad_needed(false);
  children_.emplace_back(std::move(name), std::move(layer));
  return *this;
}

void Sequential::set_input_grad_needed(bool needed) {
  Layer::set_input_grad_needed(needed);
  if (!children_.empty()) children_.front().second->set_input_grad_needed(needed);
}

Forward Sequential::forward_impl(const Tensor& input, Mode mode) {
  auto context = std::make_unique<SequentialContext>();
  context->children.reserve(children_.size());
  Tensor x = input;
  bool fresh = false;  // x was made by the previous child, which keeps no reference to it
  for (std::size_t i = 0; i < children_.size(); ++i) {
    Layer* child = children_[i].second.get();
    if (auto* activation = in_place_activation(*child); activation != nullptr && fresh && x.device() == Device::cpu) {
      context->children.push_back(activation->forward_in_place(x));
      fresh = false;
      continue;
    }
    if (auto* norm = batch_norm_folding_activation(i); norm != nullptr && x.device() == Device::cpu) {
      // The ReLU after this BatchNorm applied as it stores its outputs.
      const auto* activation = in_place_activation(*children_[i + 1].second);
      auto step = norm->forward_through(x, mode, activation->kind());
      x = std::move(step.output);
      context->children.push_back(std::move(step.context));
      context->children.push_back(activation->context_of_output(x));
      fresh = false;  // the activation's context holds it
      ++i;
      continue;
    }
    if (auto* linear = linear_folding_activation(i, true); linear != nullptr && x.device() == Device::cpu) {
      // The ReLU or tanh after this Linear applied to its outputs as they are made.
      const auto* activation = in_place_activation(*children_[i + 1].second);
      auto step = linear->forward_through(x, activation->kind());
      x = std::move(step.output);
      context->children.push_back(std::move(step.context));
      context->children.push_back(activation->context_of_output(x));
      fresh = false;
      ++i;
      continue;
    }
    auto step = child->forward(x, mode);
    x = std::move(step.output);
    context->children.push_back(std::move(step.context));
    fresh = child->returns_fresh_tensors();
  }
  return {x, std::move(context)};
}

Tensor Sequential::backward_impl(const Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const SequentialContext&>(context);
  if (saved.children.size() != children_.size()) throw std::logic_error("Sequential: context from another network");
  Tensor g = grad_output;
  bool fresh = false;  // g was made by the child after this one (never the caller's gradient)
  for (std::size_t i = children_.size(); i-- > 0;) {
    Layer& child = *children_[i].second;
    if (auto* norm = i > 0 ? batch_norm_folding_activation(i - 1) : nullptr; norm != nullptr && g.device() == Device::cpu) {
      // The ReLU at i and the BatchNorm before it, whose forward applied it: one backward.
      g = norm->backward_through(*saved.children[i - 1], g, in_place_activation(child)->kind());
      fresh = true;
      if (backward_hook_) backward_hook_(i);
      --i;
    } else if (auto* activation = in_place_activation(child); activation != nullptr && fresh && g.device() == Device::cpu) {
      activation->backward_in_place(*saved.children[i], g);
      fresh = false;
    } else if (auto* linear = linear_folding_activation(i, false); linear != nullptr && g.device() == Device::cpu) {
      // This Linear's input is the output of the ReLU or tanh before it: one pass for both.
      g = linear->backward_through(*saved.children[i], g, in_place_activation(*children_[i - 1].second)->kind());
      fresh = true;
      if (backward_hook_) backward_hook_(i);
      --i;  // the activation's backward is done
    } else {
      g = child.backward(*saved.children[i], g);
      fresh = g.defined() && child.returns_fresh_tensors();
    }
    if (backward_hook_) backward_hook_(i);
  }
  return g;
}

BatchNorm* Sequential::batch_norm_folding_activation(std::size_t i) const {
  if (i + 1 >= children_.size()) return nullptr;
  auto* norm = dynamic_cast<BatchNorm*>(children_[i].second.get());
  const auto* activation = in_place_activation(*children_[i + 1].second);
  return norm != nullptr && activation != nullptr && norm->folds_activation(activation->kind()) ? norm : nullptr;
}

Linear* Sequential::linear_folding_activation(std::size_t i, bool after) const {
  if (after ? i + 1 >= children_.size() : i == 0) return nullptr;
  auto* linear = dynamic_cast<Linear*>(children_[i].second.get());
  const auto* activation = in_place_activation(*children_[after ? i + 1 : i - 1].second);
  if (linear == nullptr || activation == nullptr) return nullptr;
  const bool folds = after ? linear->folds_activation_forward(activation->kind())
                           : linear->folds_activation_backward(activation->kind());
  return folds ? linear : nullptr;
}

std::string Sequential::describe() const {
  std::string text = "Sequential(";
  for (std::size_t i = 0; i < children_.size(); ++i) {
    if (i) text += ", ";
    text += children_[i].second->describe();
  }
  return text + ")";
}

void Sequential::visit_parameters(const std::string& prefix, const ParameterVisitor& visit) {
  for (auto& [name, child] : children_) child->visit_parameters(join_name(prefix, name), visit);
}
void Sequential::visit_buffers(const std::string& prefix, const BufferVisitor& visit) {
  for (auto& [name, child] : children_) child->visit_buffers(join_name(prefix, name), visit);
}
void Sequential::visit_generators(const std::string& prefix, const GeneratorVisitor& visit) {
  for (auto& [name, child] : children_) child->visit_generators(join_name(prefix, name), visit);
}

Residual::Residual(std::unique_ptr<Layer> body, std::unique_ptr<Layer> shortcut)
    : body_(std::move(body)), shortcut_(std::move(shortcut)) {
  if (!body_) throw std::invalid_argument("Residual: null body");
}

Forward Residual::forward_impl(const Tensor& input, Mode mode) {
  auto context = std::make_unique<ResidualContext>();
  auto body = body_->forward(input, mode);
  context->body = std::move(body.context);
  Tensor skip = input;
  if (shortcut_) {
    auto s = shortcut_->forward(input, mode);
    skip = std::move(s.output);
    context->shortcut = std::move(s.context);
  }
  return {add(body.output, skip, "Residual"), std::move(context)};
}

Tensor Residual::backward_impl(const Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const ResidualContext&>(context);
  Tensor through_body = body_->backward(*saved.body, grad_output);
  Tensor through_skip = shortcut_ ? shortcut_->backward(*saved.shortcut, grad_output) : grad_output;
  return add(through_body, through_skip, "Residual backward");
}

std::string Residual::describe() const {
  return "Residual(" + body_->describe() + (shortcut_ ? ", shortcut=" + shortcut_->describe() : "") + ")";
}

void Residual::visit_parameters(const std::string& prefix, const ParameterVisitor& visit) {
  body_->visit_parameters(join_name(prefix, "body"), visit);
  if (shortcut_) shortcut_->visit_parameters(join_name(prefix, "shortcut"), visit);
}
void Residual::visit_buffers(const std::string& prefix, const BufferVisitor& visit) {
  body_->visit_buffers(join_name(prefix, "body"), visit);
  if (shortcut_) shortcut_->visit_buffers(join_name(prefix, "shortcut"), visit);
}
void Residual::visit_generators(const std::string& prefix, const GeneratorVisitor& visit) {
  body_->visit_generators(join_name(prefix, "body"), visit);
  if (shortcut_) shortcut_->visit_generators(join_name(prefix, "shortcut"), visit);
}

}  // namespace slurmlab::nn
