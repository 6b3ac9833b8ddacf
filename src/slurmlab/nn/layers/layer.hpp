#pragma once
// Layer: forward returns the output and a Context that backward consumes, so a layer keeps
// no hidden per-call state (tiny-cuda-nn style): two forwards in flight, or a forward whose
// backward never comes, cannot corrupt each other. Persistent state lives in the layer:
// parameters (with their gradients), buffers (BatchNorm running statistics) and random
// generators (Dropout), each visited by name so that optimizers, checkpoints and the
// safetensors export see the same PyTorch-style names ("features.0.weight").
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "slurmlab/nn/tensor/random.hpp"
#include "slurmlab/nn/tensor/tensor.hpp"

namespace slurmlab::nn {

enum class Mode { train, eval };

struct Parameter {
  Tensor value;
  Tensor grad;  // same shape; backward adds into it, zero_grad clears it
  // Not trained: kept at its value (checkpointed, but left out of trainable_parameters_of),
  // as a tensor with requires_grad=False in PyTorch (airbench94's whitening filters and
  // BatchNorm scales). Set after an optimizer was made, the optimizer skips it from then on
  // (airbench94 stops training its whitening bias after 3 epochs).
  bool frozen = false;
  // SGD steps this parameter with learning rate lr * lr_scale and weight decay
  // weight_decay / lr_scale, so that the decay per step stays lr * weight_decay: a PyTorch
  // parameter group with lr * s and weight_decay / s (airbench94's BatchNorm biases, s = 64).
  float lr_scale = 1.0f;
  explicit Parameter(Shape shape) : value(Tensor::zeros(shape)), grad(Tensor::zeros(std::move(shape))) {}
};

// What a layer's forward saved for its backward.
class Context {
 public:
  virtual ~Context() = default;
};

struct Forward {
  Tensor output;
  std::unique_ptr<Context> context;
};

// The inputs a layer's forward accepts: a number of axes and, where the layer knows it, the
// extent of axis 1 (features of [N, F], channels of NCHW). Default: any defined tensor.
struct InputSpec {
  std::int64_t min_rank = 0;
  std::int64_t max_rank = -1;  // -1: no upper limit
  std::int64_t axis1 = -1;     // -1: any
  const char* axis1_name = "channels";

  bool accepts(const Shape& shape) const;
  // "a 4-d input with 3 channels on axis 1", "a 2-d or 3-d input", "an input with at least 2 axes"
  std::string describe() const;
};

// forward and backward are not virtual (tiny-cuda-nn's Object): they check their arguments
// once, for every layer and backend alike, with one sentence naming the layer and the expected
// and actual shapes, then call the layer's forward_impl / backward_impl, which may rely on it.
class Layer {
 public:
  virtual ~Layer() = default;
  // std::invalid_argument when `input` is undefined or not what expected_input() accepts.
  Forward forward(const Tensor& input, Mode mode);
  // Adds the parameter gradients into each Parameter::grad and returns d loss / d input.
  Tensor backward(const Context& context, const Tensor& grad_output);
  virtual std::string describe() const = 0;
  virtual InputSpec expected_input() const { return {}; }
  // Whether backward must return d loss / d input (default: yes). A network whose input is
  // data needs no gradient for it, as PyTorch knows from an input that does not require grad:
  // set false on the network; Sequential hands it to its first child, and a Conv2d or Linear
  // there skips its input-gradient product (for a first convolution, half its backward) and
  // returns an undefined tensor. Other layers compute the gradient regardless.
  virtual void set_input_grad_needed(bool needed) { input_grad_needed_ = needed; }
  bool input_grad_needed() const { return input_grad_needed_; }
  // Whether forward's output and backward's input gradient are, on the CPU, tensors the layer
  // made for that call and keeps no reference to, so that the next layer may overwrite them:
  // Sequential then runs a ReLU or tanh that follows in place (ActivationLayer::forward_in_place,
  // backward_in_place), one pass over one buffer instead of a second buffer. Default: no;
  // Linear, Conv2d, BatchNorm, MaxPool2d and Residual say yes.
  virtual bool returns_fresh_tensors() const { return false; }

  // std::invalid_argument, as forward throws it, when `input` is undefined or not what
  // expected_input() accepts.
  void check_input(const Tensor& input) const;

  using ParameterVisitor = std::function<void(const std::string& name, Parameter& parameter)>;
  using BufferVisitor = std::function<void(const std::string& name, Tensor& buffer)>;
  using GeneratorVisitor = std::function<void(const std::string& name, Generator& generator)>;
  virtual void visit_parameters(const std::string& /*prefix*/, const ParameterVisitor& /*visit*/) {}
  virtual void visit_buffers(const std::string& /*prefix*/, const BufferVisitor& /*visit*/) {}
  virtual void visit_generators(const std::string& /*prefix*/, const GeneratorVisitor& /*visit*/) {}

 private:
  // The layer's computation, dispatched on the input's device (CPU here, CUDA in the layer's
  // *_cuda.cpp file).
  virtual Forward forward_impl(const Tensor& input, Mode mode) = 0;
  virtual Tensor backward_impl(const Context& context, const Tensor& grad_output) = 0;

  bool input_grad_needed_ = true;
};

struct NamedParameter {
  std::string name;
  Parameter* parameter;
};
struct NamedBuffer {
  std::string name;
  Tensor* buffer;
};

// In visiting order (the order of PyTorch's state_dict for the same architecture).
std::vector<NamedParameter> parameters_of(Layer& layer);
// The same without frozen parameters: what an optimizer steps.
std::vector<NamedParameter> trainable_parameters_of(Layer& layer);
std::vector<NamedBuffer> buffers_of(Layer& layer);
std::int64_t parameter_count(Layer& layer);
void zero_grad(Layer& layer);
// Prefix join: "features" + "0" -> "features.0"; "" + "weight" -> "weight".
std::string join_name(const std::string& prefix, const std::string& name);

// Moves every parameter (value and gradient) and buffer of `layer` to `device`, in place.
// Optimizers must be created after the move (their state is made on the parameters' device).
void to_device(Layer& layer, Device device);
// Where `layer`'s parameters are (the CPU for a layer without any).
Device device_of(Layer& layer);

}  // namespace slurmlab::nn
