// Conv2d, CUDA backend: cuDNN 9 convolutions in float32, TF32 or bf16 (conv2d.cpp is the CPU
// reference). Host code, C++20; built only with CUDA.
//
// cuDNN API choice: the convolution calls below, and the pooling and batch-norm ones of
// pooling_cuda.cpp and batchnorm_cuda.cpp, are cuDNN 9's
// "legacy" descriptor API (cudnnConvolutionForward, cudnnGetConvolutionForwardAlgorithm_v7,
// cudnnPoolingForward, cudnnBatchNormalizationForwardTraining, ...). cuDNN 9 still ships and
// supports it (it is marked deprecated only when CUDNN_WARN_DEPRECATED is defined), it runs
// on the same engines as the graph API for these plain operations, and it needs a fraction of
// the descriptor code the backend/graph API needs for the same convolution. The cuDNN 7
// calls that cuDNN 8/9 removed (cudnnGetConvolutionForwardAlgorithm without _v7, ...) are not
// used. Moving to the graph API is the way to fuse convolution + bias + ReLU later.
//
// Descriptors and algorithm choices are made once per shape and kept in a process-wide plan
// cache keyed by everything they depend on (shapes, stride, padding, math mode), as PyTorch's
// cuDNN cache; algorithms come from cuDNN's heuristics (the _v7 queries, the choice PyTorch
// makes with torch.backends.cudnn.benchmark off), the first that succeeds within the
// workspace cap.
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "slurmlab/nn/cuda/planning.hpp"
#include "slurmlab/nn/layers/cuda_support.hpp"
#include "slurmlab/nn/layers/layers_cuda.hpp"

namespace slurmlab::nn::cuda {
namespace {

struct FilterDescriptor {
  cudnnFilterDescriptor_t handle = nullptr;
  FilterDescriptor(std::int64_t k, std::int64_t c, std::int64_t r, std::int64_t s,
                   cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    SLURMLAB_CUDNN_CHECK(cudnnCreateFilterDescriptor(&handle));
    SLURMLAB_CUDNN_CHECK(cudnnSetFilter4dDescriptor(handle, type, CUDNN_TENSOR_NCHW, as_int(k, "filters"),
                                                    as_int(c, "channels"), as_int(r, "kernel"), as_int(s, "kernel")));
  }
  ~FilterDescriptor() { cudnnDestroyFilterDescriptor(handle); }
  FilterDescriptor(const FilterDescriptor&) = delete;
  FilterDescriptor& operator=(const FilterDescriptor&) = delete;
};
struct ConvolutionDescriptor {
  cudnnConvolutionDescriptor_t handle = nullptr;
  // math: 0 float32 (CUDNN_FMA_MATH: no tensor cores, exact float32 products), 1 TF32
  // (CUDNN_DEFAULT_MATH lets cuDNN use TF32 tensor cores for float32 data on Ampere and
  // later), 2 bf16 data (CUDNN_TENSOR_OP_MATH). Accumulation is float32 in all three. This is
  // the math type asked of the heuristics; the chosen algorithm's replaces it (ConvPlan).
  ConvolutionDescriptor(int padding, int stride, int math) {
    SLURMLAB_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&handle));
    SLURMLAB_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(handle, padding, padding, stride, stride, 1, 1,
                                                         CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    SLURMLAB_CUDNN_CHECK(cudnnSetConvolutionMathType(
        handle, math == 2 ? CUDNN_TENSOR_OP_MATH : (math == 1 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH)));
  }
  ~ConvolutionDescriptor() { cudnnDestroyConvolutionDescriptor(handle); }
  ConvolutionDescriptor(const ConvolutionDescriptor&) = delete;
  ConvolutionDescriptor& operator=(const ConvolutionDescriptor&) = delete;
};

// --- Convolution plans --------------------------------------------------------------------
// Keyed by everything the descriptors and the algorithm choice depend on (cuda/planning.hpp).
using ConvKey = cuda_planning::ConvPlanKey;
using cuda_planning::ConvMath;

// cuDNN ranks (algorithm, math type) pairs (cudnnGet*Algorithm_v7's perf.mathType), and may
// rank a math type other than the descriptor's: the descriptor must then be set to the chosen
// entry's math type, or cuDNN runs another engine than the one chosen, with another workspace
// size (PyTorch's Conv_v7.cpp does the same, per direction). Hence one convolution
// descriptor per direction. With TF32 off only FMA-math entries qualify.
// The qualifying entry of `perf` from index `first` on (cuda_planning::choose_algorithm), with
// the descriptor set to its math type; nullopt when none is left.
template <class Perf>
std::optional<std::size_t> choose_convolution_algorithm(const std::vector<Perf>& perf, ConvolutionDescriptor& descriptor,
                                                        int math, std::size_t cap, std::size_t first) {
  std::vector<cuda_planning::AlgorithmCandidate> ranked;
  for (const auto& p : perf) {
    ranked.push_back({.algorithm = static_cast<int>(p.algo),
                      .succeeded = p.status == CUDNN_STATUS_SUCCESS,
                      .workspace_bytes = p.memory,
                      .fma_math = p.mathType == CUDNN_FMA_MATH});
  }
  const auto chosen = cuda_planning::choose_algorithm(ranked, cap, math == 0, first);
  if (chosen) SLURMLAB_CUDNN_CHECK(cudnnSetConvolutionMathType(descriptor.handle, perf[*chosen].mathType));
  return chosen;
}

std::runtime_error no_algorithm(const char* direction, int math, std::size_t cap) {
  return std::runtime_error(std::string("Conv2d: no cuDNN ") + direction + " algorithm fits the workspace cap of " +
                            std::to_string(cap >> 20) + " MiB" +
                            (math == 0 ? " with exact float32 (FMA) math; raise the cap or enable TF32" : "; raise the cap"));
}

// Runs one convolution call; when cuDNN refuses the chosen algorithm at run time (a
// NOT_SUPPORTED status: nothing ran, nothing was written), `next` moves the plan to the next
// qualifying one and the call runs again, as PyTorch's AlgoIterator does. Any other failure,
// or none left, throws with cuDNN's message.
template <class Run, class Next>
void run_with_next_algorithm(Run run, Next next, const char* what) {
  for (;;) {
    const cudnnStatus_t status = run();
    if (status == CUDNN_STATUS_SUCCESS) return;
    const bool refused = status >= CUDNN_STATUS_NOT_SUPPORTED && status < CUDNN_STATUS_NOT_SUPPORTED + 1000;
    if (!refused || !next()) check_cudnn(static_cast<int>(status), what, __FILE__, __LINE__);
  }
}

struct ConvPlan {
  int math;
  TensorDescriptor x, y, y_float, bias;  // x, y in the data type of `math`; y_float for the bias
  FilterDescriptor w;
  // One per direction: each carries the math type of the algorithm chosen for it.
  ConvolutionDescriptor forward_conv, data_conv, filter_conv;
  Shape output_shape;
  cudnnConvolutionFwdAlgo_t forward_algo{};
  cudnnConvolutionBwdDataAlgo_t data_algo{};
  cudnnConvolutionBwdFilterAlgo_t filter_algo{};
  std::size_t forward_bytes = 0, data_bytes = 0, filter_bytes = 0;
  std::size_t workspace_cap;
  // cuDNN's ranking per direction and the entry in use (the next one after a refused run).
  std::vector<cudnnConvolutionFwdAlgoPerf_t> forward_perf;
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> data_perf;
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> filter_perf;
  std::size_t forward_index = 0, data_index = 0, filter_index = 0;

  ConvPlan(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t wi, std::int64_t k, std::int64_t kernel,
           std::int64_t stride, std::int64_t padding, int math_mode, std::size_t cap)
      : math(math_mode), x(n, c, h, wi, math_mode == 2 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT), y(), y_float(),
        bias(1, k, 1, 1), w(k, c, kernel, kernel, math_mode == 2 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT),
        forward_conv(as_int(padding, "padding"), as_int(stride, "stride"), math_mode),
        data_conv(as_int(padding, "padding"), as_int(stride, "stride"), math_mode),
        filter_conv(as_int(padding, "padding"), as_int(stride, "stride"), math_mode), workspace_cap(cap) {
    int on = 0, oc = 0, oh = 0, ow = 0;
    SLURMLAB_CUDNN_CHECK(
        cudnnGetConvolution2dForwardOutputDim(forward_conv.handle, x.handle, w.handle, &on, &oc, &oh, &ow));
    SLURMLAB_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y.handle, CUDNN_TENSOR_NCHW,
                                                    math == 2 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT, on, oc, oh, ow));
    SLURMLAB_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y_float.handle, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, on, oc, oh, ow));
    output_shape = {on, oc, oh, ow};
    cudnnHandle_t handle = dnn();
    int capacity = 0, returned = 0;
    SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &capacity));
    forward_perf.resize(static_cast<std::size_t>(std::max(capacity, 1)));
    SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle, x.handle, w.handle, forward_conv.handle,
                                                                y.handle, capacity, &returned, forward_perf.data()));
    forward_perf.resize(static_cast<std::size_t>(returned));
    if (!use_forward(0)) throw no_algorithm("forward", math, cap);
    SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle, &capacity));
    data_perf.resize(static_cast<std::size_t>(std::max(capacity, 1)));
    SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, w.handle, y.handle, data_conv.handle,
                                                                     x.handle, capacity, &returned, data_perf.data()));
    data_perf.resize(static_cast<std::size_t>(returned));
    if (!use_data(0)) throw no_algorithm("backward-data", math, cap);
    SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle, &capacity));
    filter_perf.resize(static_cast<std::size_t>(std::max(capacity, 1)));
    SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        handle, x.handle, y.handle, filter_conv.handle, w.handle, capacity, &returned, filter_perf.data()));
    filter_perf.resize(static_cast<std::size_t>(returned));
    if (!use_filter(0)) throw no_algorithm("backward-filter", math, cap);
  }

  // Each takes the direction's first qualifying algorithm from index `first` on whose exact
  // workspace (the size query of the chosen algorithm and math type, which is what runs) fits
  // under the cap; false when none is left.
  bool use_forward(std::size_t first) {
    return use_algorithm(forward_perf, forward_conv, first, forward_index, forward_algo, forward_bytes, [&](auto algo) {
      std::size_t bytes = 0;
      SLURMLAB_CUDNN_CHECK(
          cudnnGetConvolutionForwardWorkspaceSize(dnn(), x.handle, w.handle, forward_conv.handle, y.handle, algo, &bytes));
      return bytes;
    });
  }
  bool use_data(std::size_t first) {
    return use_algorithm(data_perf, data_conv, first, data_index, data_algo, data_bytes, [&](auto algo) {
      std::size_t bytes = 0;
      SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(dnn(), w.handle, y.handle, data_conv.handle,
                                                                        x.handle, algo, &bytes));
      return bytes;
    });
  }
  bool use_filter(std::size_t first) {
    return use_algorithm(filter_perf, filter_conv, first, filter_index, filter_algo, filter_bytes, [&](auto algo) {
      std::size_t bytes = 0;
      SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn(), x.handle, y.handle, filter_conv.handle,
                                                                          w.handle, algo, &bytes));
      return bytes;
    });
  }

 private:
  template <class Perf, class Algo, class Size>
  bool use_algorithm(const std::vector<Perf>& perf, ConvolutionDescriptor& descriptor, std::size_t first,
                     std::size_t& index, Algo& algo, std::size_t& bytes, Size workspace_size) {
    for (auto i = choose_convolution_algorithm(perf, descriptor, math, workspace_cap, first); i;
         i = choose_convolution_algorithm(perf, descriptor, math, workspace_cap, *i + 1)) {
      index = *i;
      algo = perf[*i].algo;
      bytes = workspace_size(algo);
      if (bytes <= workspace_cap) return true;
    }
    return false;
  }
};

ConvPlan& conv_plan(const ConvKey& key) {
  static std::map<ConvKey, std::unique_ptr<ConvPlan>> plans;
  auto& slot = plans[key];
  if (!slot) {
    slot = std::make_unique<ConvPlan>(key.batch, key.channels, key.height, key.width, key.filters, key.kernel,
                                      key.stride, key.padding, static_cast<int>(key.math), key.workspace_cap);
  }
  return *slot;
}

std::set<ConvKey>& bf16_unsupported_shapes() {
  static std::set<ConvKey> shapes;
  return shapes;
}

struct ConvContext final : nn::Context {
  Tensor input;  // float32, or its bf16 copy when the plan computes in bf16
  ConvKey key;
};

}  // namespace

Forward conv2d_forward(Conv2d& layer, const Tensor& input) {
  auto& w = layer.weight().value;
  require_cuda(w, "Conv2d");
  ConvKey key = cuda_planning::conv_plan_key(input.shape(), w.shape(), layer.stride(), layer.padding(),
                                             Context::get().options());
  ConvPlan* plan = nullptr;
  if (key.math == ConvMath::bf16) {
    // Shapes cuDNN has no bf16 engine for run in float32/TF32 instead (remembered per shape).
    auto& unsupported = bf16_unsupported_shapes();
    if (!unsupported.count(key)) {
      try {
        plan = &conv_plan(key);
      } catch (const std::runtime_error&) {
        unsupported.insert(key);
      }
    }
    if (plan == nullptr) key.math = tf32_on() ? ConvMath::tf32 : ConvMath::float32;
  }
  if (plan == nullptr) plan = &conv_plan(key);
  const bool bf16 = plan->math == 2;
  Tensor output(plan->output_shape, Device::cuda);
  const float one = 1.0f, zero = 0.0f;
  auto context = std::make_unique<ConvContext>();
  context->key = key;
  context->input = bf16 ? to_bf16(input) : input;
  const Tensor w_operand = bf16 ? to_bf16(w) : w;
  Tensor y_operand = bf16 ? Tensor({(output.numel() + 1) / 2}, Device::cuda) : output;
  // Grown here to what backward will need too: growing frees the old block (cudaFree waits
  // for the whole device), which during backward would also wait for the NCCL all-reduces
  // launched from the backward hook, outside their timeout.
  Context::get().workspace(std::max({plan->forward_bytes, plan->data_bytes, plan->filter_bytes}));
  run_with_next_algorithm(
      [&] {
        void* workspace = Context::get().workspace(plan->forward_bytes);
        return cudnnConvolutionForward(dnn(), &one, plan->x.handle, context->input.device_data(), plan->w.handle,
                                       w_operand.device_data(), plan->forward_conv.handle, plan->forward_algo, workspace,
                                       plan->forward_bytes, &zero, plan->y.handle, y_operand.device_data());
      },
      [&] { return plan->use_forward(plan->forward_index + 1); }, "cudnnConvolutionForward");
  if (bf16) {
    cuda_kernels::bf16_to_float(reinterpret_cast<const std::uint16_t*>(y_operand.device_data()), output.device_data(),
                                output.numel(), stream());
  }
  if (layer.bias().value.numel() > 0) {
    SLURMLAB_CUDNN_CHECK(cudnnAddTensor(dnn(), &one, plan->bias.handle, layer.bias().value.device_data(), &one,
                                        plan->y_float.handle, output.device_data()));
  }
  return {output, std::move(context)};
}

Tensor conv2d_backward(Conv2d& layer, const nn::Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const ConvContext&>(context);
  auto& plan = conv_plan(saved.key);
  if (grad_output.shape() != plan.output_shape) throw std::invalid_argument("Conv2d: gradient shape mismatch");
  const bool bf16 = plan.math == 2;
  const float one = 1.0f, zero = 0.0f;
  auto& w = layer.weight();
  if (layer.bias().value.numel() > 0) {
    SLURMLAB_CUDNN_CHECK(cudnnConvolutionBackwardBias(dnn(), &one, plan.y_float.handle, grad_output.device_data(), &one,
                                                      plan.bias.handle, layer.bias().grad.device_data()));
  }
  const Tensor g_operand = bf16 ? to_bf16(grad_output) : grad_output;
  // bf16: the weight gradient of the bf16 weight copy, then added into the float32 master
  // gradient (autocast's cast-back); float32: accumulated in place (beta = 1).
  Tensor dw_operand = bf16 ? Tensor({(w.grad.numel() + 1) / 2}, Device::cuda) : w.grad;
  run_with_next_algorithm(
      [&] {
        void* workspace = Context::get().workspace(plan.filter_bytes);
        return cudnnConvolutionBackwardFilter(dnn(), &one, plan.x.handle, saved.input.device_data(), plan.y.handle,
                                              g_operand.device_data(), plan.filter_conv.handle, plan.filter_algo,
                                              workspace, plan.filter_bytes, bf16 ? &zero : &one, plan.w.handle,
                                              dw_operand.device_data());
      },
      [&] { return plan.use_filter(plan.filter_index + 1); }, "cudnnConvolutionBackwardFilter");
  if (bf16) {
    Tensor dw(w.grad.shape(), Device::cuda);
    cuda_kernels::bf16_to_float(reinterpret_cast<const std::uint16_t*>(dw_operand.device_data()), dw.device_data(),
                                dw.numel(), stream());
    cuda_kernels::add(w.grad.device_data(), dw.device_data(), w.grad.device_data(), dw.numel(), stream());
  }
  if (!layer.input_grad_needed()) return {};  // the network's first layer: its input is data
  const Tensor w_operand = bf16 ? to_bf16(w.value) : w.value;
  const Shape input_shape{saved.key.batch, saved.key.channels, saved.key.height, saved.key.width};
  Tensor grad_input(input_shape, Device::cuda);
  Tensor dx_operand = bf16 ? Tensor({(grad_input.numel() + 1) / 2}, Device::cuda) : grad_input;
  run_with_next_algorithm(
      [&] {
        void* workspace = Context::get().workspace(plan.data_bytes);
        return cudnnConvolutionBackwardData(dnn(), &one, plan.w.handle, w_operand.device_data(), plan.y.handle,
                                            g_operand.device_data(), plan.data_conv.handle, plan.data_algo, workspace,
                                            plan.data_bytes, &zero, plan.x.handle, dx_operand.device_data());
      },
      [&] { return plan.use_data(plan.data_index + 1); }, "cudnnConvolutionBackwardData");
  if (bf16) {
    cuda_kernels::bf16_to_float(reinterpret_cast<const std::uint16_t*>(dx_operand.device_data()),
                                grad_input.device_data(), grad_input.numel(), stream());
  }
  return grad_input;
}

}  // namespace slurmlab::nn::cuda

namespace slurmlab::nn {

// Declared in cuda/device.hpp with the backend's other counters; defined here, beside the set
// it counts (cuda/ may not reach up into layers/).
std::size_t cuda_bf16_convolution_fallbacks() { return cuda::bf16_unsupported_shapes().size(); }

}  // namespace slurmlab::nn
