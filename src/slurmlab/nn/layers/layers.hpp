#pragma once
// The layers of slurmlab::nn. Shapes follow PyTorch: images are NCHW, features are [N, F].
// Initialisation follows PyTorch's defaults (Kaiming-uniform with a = sqrt(5) for Linear and
// Conv2d weights, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for biases),
// drawn from the Generator passed in, so a seed fixes a network.
//
// Each layer's CPU implementation, the reference, has a file of its own (linear.cpp,
// conv2d.cpp, ...); its CUDA path is the file beside it (linear_cuda.cpp, conv2d_cuda.cpp,
// ...; declared in layers_cuda.hpp), which forward_impl/backward_impl call when the tensor is
// on Device::cuda.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "slurmlab/nn/layers/layer.hpp"

namespace slurmlab::nn {

enum class Activation { relu, tanh, gelu, silu };
std::string to_string(Activation activation);

class Linear final : public Layer {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, Generator& init, bool bias = true);
  InputSpec expected_input() const override;
  std::string describe() const override;
  void visit_parameters(const std::string& prefix, const ParameterVisitor& visit) override;
  bool returns_fresh_tensors() const override { return true; }
  Parameter& weight() { return weight_; }  // [out, in]
  Parameter& bias() { return bias_; }      // [out]; empty shape [0] without bias
  bool has_bias() const { return has_bias_; }
  // Whether forward_through may run: on the CPU, with one input feature (the regression
  // network's first layer: an outer product), before a ReLU or tanh.
  bool folds_activation_forward(Activation kind) const;
  // forward, with the ReLU or tanh (`kind`) after this layer applied to each output before it
  // is stored: the activation's own pass over the outputs saved. The output is the
  // activation's; the context is this layer's (ActivationLayer::context_of_output gives the
  // activation's). Sequential calls it for such a pair on the CPU.
  Forward forward_through(const Tensor& input, Activation kind);
  // Whether backward_through may run: on the CPU, with one output feature (a regression
  // network's last layer: its input gradient is an outer product) and an input gradient
  // wanted, after a ReLU or tanh.
  bool folds_activation_backward(Activation kind) const;
  // backward, and then the derivative of the ReLU or tanh (`kind`) whose output was this
  // layer's input, in one pass over that input: returns d loss / d (the activation's input).
  // Sequential calls it for such a pair instead of backward and the activation's own pass
  // over the gradient (the same numbers).
  Tensor backward_through(const Context& context, const Tensor& grad_output, Activation kind);

 private:
  Forward forward_impl(const Tensor& input, Mode mode) override;
  Tensor backward_impl(const Context& context, const Tensor& grad_output) override;
  Tensor backward_bf16(const Context& context, const Tensor& grad_output);  // CPU, bf16 products

  std::int64_t in_, out_;
  bool has_bias_;
  Parameter weight_, bias_;
};

class Conv2d final : public Layer {
 public:
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size, Generator& init,
         std::int64_t stride = 1, std::int64_t padding = 0, bool bias = true);
  InputSpec expected_input() const override;
  std::string describe() const override;
  void visit_parameters(const std::string& prefix, const ParameterVisitor& visit) override;
  bool returns_fresh_tensors() const override { return true; }
  Parameter& weight() { return weight_; }  // [out, in, k, k]
  Parameter& bias() { return bias_; }
  std::int64_t stride() const { return stride_; }
  std::int64_t padding() const { return padding_; }

 private:
  Forward forward_impl(const Tensor& input, Mode mode) override;
  Tensor backward_impl(const Context& context, const Tensor& grad_output) override;

  std::int64_t in_, out_, kernel_, stride_, padding_;
  bool has_bias_;
  Parameter weight_, bias_;
};

// Element-wise nonlinearity. GELU is the exact (erf) form, PyTorch's default.
class ActivationLayer final : public Layer {
 public:
  explicit ActivationLayer(Activation kind) : kind_(kind) {}
  std::string describe() const override { return to_string(kind_); }
  Activation kind() const { return kind_; }
  // ReLU and tanh need only their output for the derivative, so they can run in place on a
  // CPU tensor nobody else holds (Sequential does so after a layer that returns fresh
  // tensors): x becomes the activation and the returned context keeps it; backward_in_place
  // multiplies grad by the derivative. The same values as forward and backward.
  bool runs_in_place() const { return kind_ == Activation::relu || kind_ == Activation::tanh; }
  std::unique_ptr<Context> forward_in_place(Tensor& x);
  void backward_in_place(const Context& context, Tensor& grad);
  // The context backward and backward_in_place take when the layer before applied this ReLU
  // or tanh itself and `output` is the result (Linear::forward_through).
  std::unique_ptr<Context> context_of_output(const Tensor& output) const;

 private:
  Forward forward_impl(const Tensor& input, Mode mode) override;
  Tensor backward_impl(const Context& context, const Tensor& grad_output) override;

  Activation kind_;
};
// y = factor * x: a fixed multiplier (airbench94 ends with Mul(1/9) after its Linear).
class Scale final : public Layer {
 public:
  explicit Scale(float factor) : factor_(factor) {}
  std::string describe() const override;
  float factor() const { return factor_; }

 private:
  Forward forward_impl(const Tensor& input, Mode mode) override;
  Tensor backward_impl(const Context& context, const Tensor& grad_output) override;

  float factor_;
};

inline std::unique_ptr<Layer> relu() { return std::make_unique<ActivationLayer>(Activation::relu); }
inline std::unique_ptr<Layer> tanh_layer() { return std::make_unique<ActivationLayer>(Activation::tanh); }
inline std::unique_ptr<Layer> gelu() { return std::make_unique<ActivationLayer>(Activation::gelu); }
inline std::unique_ptr<Layer> silu() { return std::make_unique<ActivationLayer>(Activation::silu); }

// [N, d1, d2, ...] -> [N, d1*d2*...]
class Flatten final : public Layer {
 public:
  InputSpec expected_input() const override;
  std::string describe() const override { return "Flatten"; }

 private:
  Forward forward_impl(const Tensor& input, Mode mode) override;
  Tensor backward_impl(const Context& context, const Tensor& grad_output) override;
};

// Zeroes each element with probability p in train mode and scales the rest by 1/(1-p);
// identity in eval mode. The mask comes from the layer's own generator (seeded), which
// checkpoints save and restore.
class Dropout final : public Layer {
 public:
  Dropout(float p, std::uint64_t seed);
  std::string describe() const override;
  void visit_generators(const std::string& prefix, const GeneratorVisitor& visit) override;
  float p() const { return p_; }

 private:
  Forward forward_impl(const Tensor& input, Mode mode) override;
  Tensor backward_impl(const Context& context, const Tensor& grad_output) override;

  float p_;
  Generator generator_;
};

class MaxPool2d final : public Layer {
 public:
  explicit MaxPool2d(std::int64_t kernel_size, std::int64_t stride = 0, std::int64_t padding = 0);
  InputSpec expected_input() const override;
  std::string describe() const override;
  // Its output and input gradient are new tensors it keeps no reference to (it keeps only where
  // each maximum was): the ReLU before it runs its backward in place.
  bool returns_fresh_tensors() const override { return true; }

 private:
  Forward forward_impl(const Tensor& input, Mode mode) override;
  Tensor backward_impl(const Context& context, const Tensor& grad_output) override;

  std::int64_t kernel_, stride_, padding_;
};

// Average pooling without padding (every window lies inside the input).
class AvgPool2d final : public Layer {
 public:
  explicit AvgPool2d(std::int64_t kernel_size, std::int64_t stride = 0);
  InputSpec expected_input() const override;
  std::string describe() const override;

 private:
  Forward forward_impl(const Tensor& input, Mode mode) override;
  Tensor backward_impl(const Context& context, const Tensor& grad_output) override;

  std::int64_t kernel_, stride_;
};

// PyTorch's bins: row i covers [floor(i*H/out), ceil((i+1)*H/out)).
class AdaptiveAvgPool2d final : public Layer {
 public:
  AdaptiveAvgPool2d(std::int64_t out_height, std::int64_t out_width);
  InputSpec expected_input() const override;
  std::string describe() const override;

 private:
  Forward forward_impl(const Tensor& input, Mode mode) override;
  Tensor backward_impl(const Context& context, const Tensor& grad_output) override;

  std::int64_t out_h_, out_w_;
};

// Batch normalisation over N (and H, W) per channel. Train mode normalises with the batch
// statistics (biased variance) and updates the running ones (unbiased variance, momentum
// 0.1 as in PyTorch); eval mode uses the running statistics.
// BatchNorm1d takes [N, C] or [N, C, L]; BatchNorm2d takes [N, C, H, W].
class BatchNorm final : public Layer {
 public:
  BatchNorm(std::int64_t features, int spatial_dims, float eps = 1e-5f, float momentum = 0.1f);
  InputSpec expected_input() const override;
  std::string describe() const override;
  void visit_parameters(const std::string& prefix, const ParameterVisitor& visit) override;
  void visit_buffers(const std::string& prefix, const BufferVisitor& visit) override;
  bool returns_fresh_tensors() const override { return true; }
  Parameter& weight() { return weight_; }
  Parameter& bias() { return bias_; }
  Tensor& running_mean() { return running_mean_; }
  Tensor& running_var() { return running_var_; }
  // A float count of the train-mode batches seen (PyTorch's num_batches_tracked).
  Tensor& batches_tracked() { return batches_tracked_; }
  // Whether forward_through and backward_through may run: on the CPU, before a ReLU.
  bool folds_activation(Activation kind) const;
  // The pair BatchNorm then ReLU in one layer's passes (Sequential calls these for it on the
  // CPU): forward_through stores max(0, .) of each output, and backward_through takes the
  // gradient at the ReLU's output and applies its derivative while it reads it, from the
  // recomputed pre-ReLU value (no pass of the ReLU's own; the same numbers).
  Forward forward_through(const Tensor& input, Mode mode, Activation kind);
  Tensor backward_through(const Context& context, const Tensor& grad_output, Activation kind);

 private:
  Forward forward_impl(const Tensor& input, Mode mode) override;
  Tensor backward_impl(const Context& context, const Tensor& grad_output) override;
  Forward forward_cpu(const Tensor& input, Mode mode, bool relu);
  Tensor backward_cpu(const Context& context, const Tensor& grad_output, bool relu);

  std::int64_t features_;
  int spatial_dims_;  // 0 or 1 for BatchNorm1d, 2 for BatchNorm2d
  float eps_, momentum_;
  Parameter weight_, bias_;
  Tensor running_mean_, running_var_, batches_tracked_;
};
std::unique_ptr<Layer> batch_norm1d(std::int64_t features);
std::unique_ptr<Layer> batch_norm2d(std::int64_t features);

// Children run in order; names are their indices ("0", "1", ...) unless given.
class Sequential final : public Layer {
 public:
  Sequential() = default;
  Sequential& add(std::unique_ptr<Layer> layer);
  Sequential& add(std::string name, std::unique_ptr<Layer> layer);
  std::string describe() const override;
  void visit_parameters(const std::string& prefix, const ParameterVisitor& visit) override;
  void visit_buffers(const std::string& prefix, const BufferVisitor& visit) override;
  void visit_generators(const std::string& prefix, const GeneratorVisitor& visit) override;
  // Also sets it on the first child (now or when it is added).
  void set_input_grad_needed(bool needed) override;
  std::size_t size() const { return children_.size(); }
  Layer& operator[](std::size_t i) { return *children_.at(i).second; }
  const std::string& name(std::size_t i) const { return children_.at(i).first; }
  // Called with the child's index right after each child's backward, when that child's
  // parameter gradients are final: a data-parallel reducer starts all-reducing them while
  // backward continues (NcclGradientReducer::attach). Empty: no hook.
  using BackwardHook = std::function<void(std::size_t child)>;
  void set_backward_hook(BackwardHook hook) { backward_hook_ = std::move(hook); }

 private:
  // The Linear at i when the ReLU or tanh at i + 1 folds into its forward (`after`), or the
  // one at i - 1 into its backward; or null.
  Linear* linear_folding_activation(std::size_t i, bool after) const;
  // The BatchNorm at i when the ReLU at i + 1 folds into it, or null.
  BatchNorm* batch_norm_folding_activation(std::size_t i) const;
  Forward forward_impl(const Tensor& input, Mode mode) override;
  Tensor backward_impl(const Context& context, const Tensor& grad_output) override;

  std::vector<std::pair<std::string, std::unique_ptr<Layer>>> children_;
  BackwardHook backward_hook_;
};

// y = body(x) + shortcut(x), the shortcut being the identity when none is given
// (a ResNet basic block puts its final ReLU after this, in a Sequential).
class Residual final : public Layer {
 public:
  explicit Residual(std::unique_ptr<Layer> body, std::unique_ptr<Layer> shortcut = nullptr);
  std::string describe() const override;
  void visit_parameters(const std::string& prefix, const ParameterVisitor& visit) override;
  void visit_buffers(const std::string& prefix, const BufferVisitor& visit) override;
  bool returns_fresh_tensors() const override { return true; }
  void visit_generators(const std::string& prefix, const GeneratorVisitor& visit) override;

 private:
  Forward forward_impl(const Tensor& input, Mode mode) override;
  Tensor backward_impl(const Context& context, const Tensor& grad_output) override;

  std::unique_ptr<Layer> body_, shortcut_;
};

}  // namespace slurmlab::nn
