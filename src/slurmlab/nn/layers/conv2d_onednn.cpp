// Conv2d on oneDNN (Debian's 2.6, OpenMP runtime): forward, backward-data and backward-weights
// primitives, built once per shape and cached; one engine and stream per process. Plain
// nchw/oihw memory (no reorders); threads follow openblas_get_num_threads() (the project's
// one compute-thread count) via omp_set_num_threads, as libdnnl runs on the same libgomp.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "slurmlab/nn/layers/conv2d_backend.hpp"

namespace slurmlab::nn::conv_backend {

namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

struct Runtime {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};
Runtime& runtime() {
  static Runtime r;
  return r;
}

struct Plan {
  dnnl::memory::desc x, w, b, y;
  dnnl::convolution_forward forward;
  dnnl::convolution_backward_data backward_data;
  dnnl::convolution_backward_weights backward_weights;
};

using Key = std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                       std::int64_t, std::int64_t, bool>;

const Plan& plan(const Dims& d, bool bias) {
  static std::mutex mutex;
  static std::map<Key, Plan> cache;
  const Key key{d.n, d.c, d.h, d.w, d.out, d.k, d.stride, d.pad, bias};
  std::lock_guard lock(mutex);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  auto& engine = runtime().engine;
  Plan p;
  p.x = dnnl::memory::desc({d.n, d.c, d.h, d.w}, dt::f32, tag::nchw);
  p.w = dnnl::memory::desc({d.out, d.c, d.k, d.k}, dt::f32, tag::oihw);
  p.b = dnnl::memory::desc({d.out}, dt::f32, tag::x);
  p.y = dnnl::memory::desc({d.n, d.out, d.out_h, d.out_w}, dt::f32, tag::nchw);
  const dnnl::memory::dims strides{d.stride, d.stride}, pad{d.pad, d.pad};
  auto fwd_desc = bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                         dnnl::algorithm::convolution_direct, p.x, p.w, p.b, p.y,
                                                         strides, pad, pad)
                       : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                         dnnl::algorithm::convolution_direct, p.x, p.w, p.y, strides,
                                                         pad, pad);
  dnnl::convolution_forward::primitive_desc fwd_pd(fwd_desc, engine);
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd(
      dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, p.x, p.w, p.y, strides, pad, pad),
      engine, fwd_pd);
  auto bwd_w_desc = bias ? dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, p.x, p.w,
                                                                    p.b, p.y, strides, pad, pad)
                         : dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, p.x, p.w,
                                                                    p.y, strides, pad, pad);
  dnnl::convolution_backward_weights::primitive_desc bwd_w_pd(bwd_w_desc, engine, fwd_pd);
  p.forward = dnnl::convolution_forward(fwd_pd);
  p.backward_data = dnnl::convolution_backward_data(bwd_data_pd);
  p.backward_weights = dnnl::convolution_backward_weights(bwd_w_pd);
  return cache.emplace(key, std::move(p)).first->second;
}

dnnl::memory wrap(const dnnl::memory::desc& md, const float* data) {
  return dnnl::memory(md, runtime().engine, const_cast<float*>(data));
}

void follow_thread_count() { omp_set_num_threads(std::max(1, openblas_get_num_threads())); }

}  // namespace

bool onednn_available() {
  static const bool use = [] {
    const char* choice = std::getenv("SLURMLAB_CONV");
    return !(choice && std::string(choice) == "im2col");
  }();
  return use;
}

void onednn_forward(const Dims& d, const float* x, const float* w, const float* b, float* y) {
  follow_thread_count();
  const Plan& p = plan(d, b != nullptr);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, wrap(p.x, x)}, {DNNL_ARG_WEIGHTS, wrap(p.w, w)}, {DNNL_ARG_DST, wrap(p.y, y)}};
  if (b) args.emplace(DNNL_ARG_BIAS, wrap(p.b, b));
  p.forward.execute(runtime().stream, args);
  runtime().stream.wait();
}

void onednn_backward(const Dims& d, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db) {
  follow_thread_count();
  const Plan& p = plan(d, db != nullptr);
  auto& stream = runtime().stream;
  if (dx) {
    p.backward_data.execute(stream, {{DNNL_ARG_DIFF_DST, wrap(p.y, dy)},
                                     {DNNL_ARG_WEIGHTS, wrap(p.w, w)},
                                     {DNNL_ARG_DIFF_SRC, wrap(p.x, dx)}});
  }
  const auto weights = static_cast<std::size_t>(d.out * d.c * d.k * d.k);
  std::vector<float> dw_new(weights), db_new(static_cast<std::size_t>(d.out));
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, wrap(p.x, x)},
                                             {DNNL_ARG_DIFF_DST, wrap(p.y, dy)},
                                             {DNNL_ARG_DIFF_WEIGHTS, wrap(p.w, dw_new.data())}};
  if (db) args.emplace(DNNL_ARG_DIFF_BIAS, wrap(p.b, db_new.data()));
  p.backward_weights.execute(stream, args);
  stream.wait();
  for (std::size_t i = 0; i < weights; ++i) dw[i] += dw_new[i];
  if (db)
    for (std::size_t i = 0; i < db_new.size(); ++i) db[i] += db_new[i];
}

}  // namespace slurmlab::nn::conv_backend
