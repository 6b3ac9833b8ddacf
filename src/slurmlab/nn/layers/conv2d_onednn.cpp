// Conv2d on oneDNN (Debian's 2.6): forward, backward-data and backward-weights primitives,
// built once per shape and cached with their reorders and stream. nn's tensors stay
// plain nchw/oihw; each primitive runs on the blocked layout oneDNN picks (see Staged).
//
// Threads: the batch is cut into chunks (chunk_images) and the chunks are spread over the
// process's ComputePool (as many threads as OpenBLAS uses), each chunk's primitives running on
// one thread. oneDNN's own OpenMP parallelism is not used: libgomp's idle threads spin
// (OMP_WAIT_POLICY cannot be changed once the library has loaded) and on a 2-core node they held
// the cores that OpenBLAS and the compute pool needed next, which made 2-thread steps slower
// and erratic. The chunks are fixed, and the weight and bias gradients of the chunks are added
// in chunk order, so every result is the same on any thread count.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "slurmlab/core/compute_pool.hpp"
#include "slurmlab/nn/layers/conv2d_backend.hpp"
#include "slurmlab/nn/tensor/tensor.hpp"

namespace slurmlab::nn::conv_backend {

namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// Images per chunk: 16 (a batch of 64 shares over 2-4 threads), more for batches above 256 so
// that a batch has at most 16 chunks: each chunk keeps its own primitives, buffers and weight
// gradient, which for airbench94's batch of 1024 in chunks of 16 were 64 sets per layer. A
// function of the batch alone, never of the thread count, so results stay the same bits.
constexpr std::int64_t kMinChunk = 16, kMaxChunks = 16;
std::int64_t chunk_images(std::int64_t n) { return std::max(kMinChunk, (n + kMaxChunks - 1) / kMaxChunks); }
std::int64_t chunk_count(std::int64_t n) { return (n + chunk_images(n) - 1) / chunk_images(n); }

dnnl::engine& engine() {
  static dnnl::engine e{dnnl::engine::kind::cpu, 0};
  return e;
}

// Reorder buffers of the chunk running on this thread, one per role (slot), grown to the
// largest size asked and kept for the thread's life: a chunk's primitives run on one thread
// from its first reorder to its stream's wait, and chunks on one thread run one after the
// other, so every layer and every chunk shares them. (Buffers kept per plan instead, each chunk
// of each layer with its own, made airbench94 at batch 1024 hold about 2 GB of reorder buffers,
// all of it first touched during the first step.)
class Scratch {
 public:
  static constexpr int kSlots = 4;
  void* get(int slot, std::size_t bytes) {
    Block& block = blocks_[static_cast<std::size_t>(slot)];
    if (block.bytes < bytes) {
      const std::size_t rounded = (bytes + 63) / 64 * 64;
      block.data.reset(static_cast<std::byte*>(std::aligned_alloc(64, rounded)));
      if (!block.data) {
        throw OutOfMemory("out of host memory: a convolution's reorder buffer of " + format_bytes(rounded) +
                          " could not be allocated");
      }
      block.bytes = rounded;
    }
    return block.data.get();
  }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  struct Block {
    std::unique_ptr<std::byte[], Free> data;
    std::size_t bytes = 0;
  };
  std::array<Block, kSlots> blocks_;
};

Scratch& scratch() {
  thread_local Scratch buffers;
  return buffers;
}

// A tensor as nn keeps it (plain nchw / oihw) and as a primitive wants it: oneDNN's
// implementations run fastest on blocked layouts (nChw16c with AVX-512) that it picks when asked
// for "any", and bf16 products read bf16 operands. Where the two differ, the plain tensor is
// reordered into this thread's scratch buffer `slot`, and outputs are reordered back.
struct Staged {
  dnnl::memory::desc plain, wanted;
  int slot = 0;
  dnnl::reorder to_wanted, to_plain;

  Staged() = default;
  Staged(const dnnl::memory::desc& plain_desc, const dnnl::memory::desc& wanted_desc, int scratch_slot,
         const dnnl::engine& engine)
      : plain(plain_desc), wanted(wanted_desc), slot(scratch_slot) {
    if (plain != wanted) {
      const dnnl::memory plain_memory(plain, engine, DNNL_MEMORY_NONE), wanted_memory(wanted, engine, DNNL_MEMORY_NONE);
      to_wanted = dnnl::reorder(plain_memory, wanted_memory);
      to_plain = dnnl::reorder(wanted_memory, plain_memory);
    }
  }
  bool reordered() const { return plain != wanted; }
  dnnl::memory buffer(const dnnl::engine& engine) const {
    return dnnl::memory(wanted, engine, scratch().get(slot, wanted.get_size()));
  }
  // The memory a primitive reads: the plain data itself, or the scratch buffer after a reorder.
  dnnl::memory input(const float* data, dnnl::stream& stream, const dnnl::engine& engine) const {
    dnnl::memory plain_memory(plain, engine, const_cast<float*>(data));
    if (!reordered()) return plain_memory;
    dnnl::memory staged = buffer(engine);
    to_wanted.execute(stream, plain_memory, staged);
    return staged;
  }
  // The memory a primitive writes: `data` itself, or the scratch buffer (then call finish).
  dnnl::memory output(float* data, const dnnl::engine& engine) const {
    return reordered() ? buffer(engine) : dnnl::memory(plain, engine, data);
  }
  void finish(float* data, dnnl::stream& stream, const dnnl::engine& engine) const {
    if (reordered()) {
      dnnl::memory plain_memory(plain, engine, data);
      dnnl::memory staged = buffer(engine);
      to_plain.execute(stream, staged, plain_memory);
    }
  }
};

// One chunk's primitives. Each chunk of a batch has its own plan (even chunks of equal shape),
// so chunks running at the same time never share a stream or a gradient buffer.
struct Plan {
  dnnl::stream stream;
  dnnl::memory::desc b;
  dnnl::convolution_forward forward;
  dnnl::convolution_backward_data backward_data;
  dnnl::convolution_backward_weights backward_weights;
  Staged fwd_x, fwd_w, fwd_y;            // forward: x and w in, y out
  Staged bwd_dy, bwd_w, bwd_dx;          // backward data: dy and w in, dx out
  Staged bww_x, bww_dy, bww_dw;          // backward weights: x and dy in, dw out
  std::vector<float> dw, db;             // this call's weight and bias gradients (added into nn's)
};

using Key = std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                       std::int64_t, std::int64_t, bool, std::int64_t, bool>;

// The plan of chunk `chunk` whose shape is `d` (d.n: the chunk's images). bf16: the products'
// operands (x, w and dy) in bfloat16, which the input reorders round to; outputs stay fp32.
Plan& plan(const Dims& d, bool bias, std::int64_t chunk, bool bf16) {
  static std::mutex mutex;
  static std::map<Key, Plan> cache;
  const Key key{d.n, d.c, d.h, d.w, d.out, d.k, d.stride, d.pad, bias, chunk, bf16};
  std::lock_guard lock(mutex);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  auto& engine = conv_backend::engine();
  Plan p;
  p.stream = dnnl::stream(engine);
  const dnnl::memory::dims x_dims{d.n, d.c, d.h, d.w}, w_dims{d.out, d.c, d.k, d.k}, y_dims{d.n, d.out, d.out_h, d.out_w};
  const dnnl::memory::desc x(x_dims, dt::f32, tag::nchw), w(w_dims, dt::f32, tag::oihw), y(y_dims, dt::f32, tag::nchw);
  const dt operand = bf16 ? dt::bf16 : dt::f32;
  // Operands (read by a product) in `operand`, results in fp32.
  const dnnl::memory::desc x_any(x_dims, operand, tag::any), w_any(w_dims, operand, tag::any),
      y_any(y_dims, dt::f32, tag::any), dy_any(y_dims, operand, tag::any), dx_any(x_dims, dt::f32, tag::any),
      dw_any(w_dims, dt::f32, tag::any);
  p.b = dnnl::memory::desc({d.out}, dt::f32, tag::x);
  const dnnl::memory::dims strides{d.stride, d.stride}, pad{d.pad, d.pad};
  const auto direct = dnnl::algorithm::convolution_direct;
  auto fwd_desc = bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, direct, x_any, w_any, p.b,
                                                         y_any, strides, pad, pad)
                       : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, direct, x_any, w_any,
                                                         y_any, strides, pad, pad);
  dnnl::convolution_forward::primitive_desc fwd_pd(fwd_desc, engine);
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd(
      dnnl::convolution_backward_data::desc(direct, dx_any, w_any, dy_any, strides, pad, pad), engine, fwd_pd);
  auto bwd_w_desc = bias ? dnnl::convolution_backward_weights::desc(direct, x_any, dw_any, p.b, dy_any, strides, pad, pad)
                         : dnnl::convolution_backward_weights::desc(direct, x_any, dw_any, dy_any, strides, pad, pad);
  dnnl::convolution_backward_weights::primitive_desc bwd_w_pd(bwd_w_desc, engine, fwd_pd);
  p.forward = dnnl::convolution_forward(fwd_pd);
  p.backward_data = dnnl::convolution_backward_data(bwd_data_pd);
  p.backward_weights = dnnl::convolution_backward_weights(bwd_w_pd);
  // Scratch slots: the inputs and the output of one primitive never share one; the backward
  // weights pass reuses the backward data pass's slots, whose contents are done with by then.
  p.fwd_x = Staged(x, fwd_pd.src_desc(), 0, engine);
  p.fwd_w = Staged(w, fwd_pd.weights_desc(), 1, engine);
  p.fwd_y = Staged(y, fwd_pd.dst_desc(), 2, engine);
  p.bwd_dy = Staged(y, bwd_data_pd.diff_dst_desc(), 0, engine);
  p.bwd_w = Staged(w, bwd_data_pd.weights_desc(), 1, engine);
  p.bwd_dx = Staged(x, bwd_data_pd.diff_src_desc(), 2, engine);
  p.bww_x = Staged(x, bwd_w_pd.src_desc(), 3, engine);
  p.bww_dy = Staged(y, bwd_w_pd.diff_dst_desc(), 0, engine);
  p.bww_dw = Staged(w, bwd_w_pd.diff_weights_desc(), 2, engine);
  p.dw.resize(static_cast<std::size_t>(d.out * d.c * d.k * d.k));
  p.db.resize(static_cast<std::size_t>(d.out));
  return cache.emplace(key, std::move(p)).first->second;
}

// Runs body(chunk, first image, images) for every chunk of an n-image batch, spread over the
// compute threads; each runs oneDNN on one thread.
void for_chunks(std::int64_t n, const std::function<void(std::int64_t, std::int64_t, std::int64_t)>& body) {
  const std::int64_t size = chunk_images(n), chunks = chunk_count(n);
  const int threads = static_cast<int>(std::min<std::int64_t>(std::max(1, openblas_get_num_threads()), chunks));
  ComputePool::instance().run(
      threads, chunks,
      [&](std::int64_t begin, std::int64_t end) {
        omp_set_num_threads(1);  // this thread's OpenMP regions (oneDNN's) stay on this thread
        for (std::int64_t chunk = begin; chunk < end; ++chunk) {
          const std::int64_t first = chunk * size;
          body(chunk, first, std::min(size, n - first));
        }
      },
      1);
}

Dims chunk_dims(Dims d, std::int64_t images) {
  d.n = images;
  return d;
}

// The weights reordered once per call into the layout the chunks' primitives read, instead of
// once per chunk (for airbench94's 256 -> 256 convolutions at batch 1024, 16 reorders of 590k
// weights per pass). Every chunk of a batch but a smaller last one has the same shape; a chunk
// whose plan wants another layout reorders its own.
class SharedWeights {
 public:
  SharedWeights(const Staged& staged, const float* w, Plan& first) : plain_(w) {
    if (!staged.reordered()) return;
    wanted_ = staged.wanted;
    // From the caching allocator: the same block every step, no fresh pages.
    block_ = CachingAllocator::for_device(Device::cpu).allocate(wanted_.get_size());
    auto& engine = conv_backend::engine();
    dnnl::memory source(staged.plain, engine, const_cast<float*>(w)), target(wanted_, engine, block_->data());
    staged.to_wanted.execute(first.stream, source, target);
    first.stream.wait();
  }
  // What a chunk's primitive reads: the shared reorder when its layout matches, else its own.
  dnnl::memory for_chunk(const Staged& staged, dnnl::stream& stream, const dnnl::engine& engine) const {
    if (block_ && staged.wanted == wanted_) return dnnl::memory(wanted_, engine, block_->data());
    return staged.input(plain_, stream, engine);
  }

 private:
  const float* plain_;
  dnnl::memory::desc wanted_;
  std::shared_ptr<Storage> block_;
};

}  // namespace

bool onednn_available() {
  static const bool use = [] {
    const char* choice = std::getenv("SLURMLAB_CONV");
    return !(choice && std::string(choice) == "im2col");
  }();
  return use;
}

bool onednn_bf16_native() {
  // cpu_isa values are sets of feature bits; each larger ISA contains the smaller ones (AMX
  // contains AVX512-BF16).
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
  return (isa & bf16) == bf16;
}

// The plan of a batch's first chunk, made (or found) on the calling thread before the chunks
// run, for the weights they share. oneDNN sizes a primitive's parallel work by the OpenMP
// threads of the thread that creates it, so the caller limits itself to one first, as every
// chunk's thread does: the plan is the same whichever thread makes it.
Plan& first_chunk_plan(const Dims& d, bool bias, bool bf16) {
  omp_set_num_threads(1);
  return plan(chunk_dims(d, std::min(chunk_images(d.n), d.n)), bias, 0, bf16);
}

void onednn_forward(const Dims& d, const float* x, const float* w, const float* b, float* y, bool bf16) {
  const std::int64_t x_image = d.c * d.h * d.w, y_image = d.out * d.out_h * d.out_w;
  Plan& first_plan = first_chunk_plan(d, b != nullptr, bf16);
  const SharedWeights weights(first_plan.fwd_w, w, first_plan);
  for_chunks(d.n, [&](std::int64_t chunk, std::int64_t first, std::int64_t images) {
    Plan& p = plan(chunk_dims(d, images), b != nullptr, chunk, bf16);
    auto& engine = conv_backend::engine();
    float* y_chunk = y + first * y_image;
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, p.fwd_x.input(x + first * x_image, p.stream, engine)},
                                               {DNNL_ARG_WEIGHTS, weights.for_chunk(p.fwd_w, p.stream, engine)},
                                               {DNNL_ARG_DST, p.fwd_y.output(y_chunk, engine)}};
    if (b) args.emplace(DNNL_ARG_BIAS, dnnl::memory(p.b, engine, const_cast<float*>(b)));
    p.forward.execute(p.stream, args);
    p.fwd_y.finish(y_chunk, p.stream, engine);
    p.stream.wait();
  });
}

void onednn_backward(const Dims& d, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db, bool bf16) {
  const std::int64_t x_image = d.c * d.h * d.w, y_image = d.out * d.out_h * d.out_w;
  std::vector<Plan*> plans(static_cast<std::size_t>(chunk_count(d.n)));
  Plan& first_plan = first_chunk_plan(d, db != nullptr, bf16);
  const std::optional<SharedWeights> weights =
      dx ? std::optional<SharedWeights>(std::in_place, first_plan.bwd_w, w, first_plan) : std::nullopt;
  for_chunks(d.n, [&](std::int64_t chunk, std::int64_t first, std::int64_t images) {
    Plan& p = plan(chunk_dims(d, images), db != nullptr, chunk, bf16);
    plans[static_cast<std::size_t>(chunk)] = &p;
    auto& engine = conv_backend::engine();
    const float* dy_chunk = dy + first * y_image;
    if (dx) {
      float* dx_chunk = dx + first * x_image;
      p.backward_data.execute(p.stream, {{DNNL_ARG_DIFF_DST, p.bwd_dy.input(dy_chunk, p.stream, engine)},
                                         {DNNL_ARG_WEIGHTS, weights->for_chunk(p.bwd_w, p.stream, engine)},
                                         {DNNL_ARG_DIFF_SRC, p.bwd_dx.output(dx_chunk, engine)}});
      p.bwd_dx.finish(dx_chunk, p.stream, engine);
    }
    // dy as the backward data pass reordered it, when the weights pass wants the same layout:
    // both use scratch slot 0, which nothing in between writes, so one reorder serves both.
    const bool reordered_dy_ready =
        dx && p.bww_dy.reordered() && p.bww_dy.wanted == p.bwd_dy.wanted && p.bww_dy.slot == p.bwd_dy.slot;
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, p.bww_x.input(x + first * x_image, p.stream, engine)},
        {DNNL_ARG_DIFF_DST, reordered_dy_ready ? p.bww_dy.buffer(engine) : p.bww_dy.input(dy_chunk, p.stream, engine)},
        {DNNL_ARG_DIFF_WEIGHTS, p.bww_dw.output(p.dw.data(), engine)}};
    if (db) args.emplace(DNNL_ARG_DIFF_BIAS, dnnl::memory(p.b, engine, p.db.data()));
    p.backward_weights.execute(p.stream, args);
    p.bww_dw.finish(p.dw.data(), p.stream, engine);
    p.stream.wait();
  });
  // The chunks' gradients, added in chunk order (the same sums on any thread count) into nn's,
  // which accumulate (micro-batches, shared weights) where oneDNN overwrites.
  for (const Plan* p : plans) {
    for (std::size_t i = 0; i < p->dw.size(); ++i) dw[i] += p->dw[i];
    if (db)
      for (std::size_t i = 0; i < p->db.size(); ++i) db[i] += p->db[i];
  }
}

}  // namespace slurmlab::nn::conv_backend
