#include "slurmlab/nn/models/models.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace slurmlab::nn {

namespace {
std::unique_ptr<Layer> conv(std::int64_t in, std::int64_t out, std::int64_t k, Generator& g, std::int64_t stride = 1,
                            std::int64_t padding = 0, bool bias = true) {
  return std::make_unique<Conv2d>(in, out, k, g, stride, padding, bias);
}
std::unique_ptr<Layer> linear(std::int64_t in, std::int64_t out, Generator& g) {
  return std::make_unique<Linear>(in, out, g);
}
}  // namespace

std::unique_ptr<Sequential> make_mlp(std::int64_t in, std::int64_t hidden, std::int64_t out, Activation activation,
                                     Generator& init) {
  auto net = std::make_unique<Sequential>();
  net->add(linear(in, hidden, init)).add(std::make_unique<ActivationLayer>(activation)).add(linear(hidden, out, init));
  return net;
}

std::unique_ptr<Sequential> make_image_mlp(std::int64_t in_features, std::int64_t hidden, std::int64_t classes,
                                           float dropout, Generator& init, int extra_layers) {
  if (extra_layers < 0) throw std::invalid_argument("make_image_mlp: extra_layers must not be negative");
  auto net = std::make_unique<Sequential>();
  net->add(std::make_unique<Flatten>()).add(linear(in_features, hidden, init)).add(relu());
  net->add(std::make_unique<Dropout>(dropout, init.next()));
  for (int i = 0; i < extra_layers; ++i) net->add(linear(hidden, hidden, init)).add(relu());
  net->add(linear(hidden, classes, init));
  return net;
}

std::unique_ptr<Sequential> make_tutorial_cnn(std::int64_t in_channels, std::int64_t classes, float dropout,
                                              Generator& init) {
  auto net = std::make_unique<Sequential>();
  net->add(conv(in_channels, 64, 5, init)).add(batch_norm2d(64)).add(relu()).add(std::make_unique<MaxPool2d>(2));
  net->add(conv(64, 32, 5, init)).add(batch_norm2d(32)).add(relu()).add(std::make_unique<MaxPool2d>(2));
  net->add(std::make_unique<Flatten>());
  net->add(linear(32 * 5 * 5, 64, init)).add(relu()).add(std::make_unique<Dropout>(dropout, init.next()));
  net->add(linear(64, 32, init)).add(relu()).add(std::make_unique<Dropout>(dropout, init.next()));
  net->add(linear(32, classes, init));
  return net;
}

std::unique_ptr<Sequential> make_alexnet(std::int64_t classes, float dropout, Generator& init) {
  auto features = std::make_unique<Sequential>();
  features->add(conv(3, 64, 11, init, 4, 2)).add(relu()).add(std::make_unique<MaxPool2d>(3, 2));
  features->add(conv(64, 192, 5, init, 1, 2)).add(relu()).add(std::make_unique<MaxPool2d>(3, 2));
  features->add(conv(192, 384, 3, init, 1, 1)).add(relu());
  features->add(conv(384, 256, 3, init, 1, 1)).add(relu());
  features->add(conv(256, 256, 3, init, 1, 1)).add(relu()).add(std::make_unique<MaxPool2d>(3, 2));
  auto classifier = std::make_unique<Sequential>();
  classifier->add(std::make_unique<Dropout>(dropout, init.next())).add(linear(256 * 6 * 6, 4096, init)).add(relu());
  classifier->add(std::make_unique<Dropout>(dropout, init.next())).add(linear(4096, 4096, init)).add(relu());
  classifier->add(linear(4096, classes, init));
  auto net = std::make_unique<Sequential>();
  net->add("features", std::move(features));
  net->add("avgpool", std::make_unique<AdaptiveAvgPool2d>(6, 6));
  net->add("flatten", std::make_unique<Flatten>());
  net->add("classifier", std::move(classifier));
  return net;
}

namespace {
std::unique_ptr<Layer> basic_block(std::int64_t in, std::int64_t out, std::int64_t stride, Generator& g) {
  auto body = std::make_unique<Sequential>();
  body->add(conv(in, out, 3, g, stride, 1, false)).add(batch_norm2d(out)).add(relu());
  body->add(conv(out, out, 3, g, 1, 1, false)).add(batch_norm2d(out));
  std::unique_ptr<Layer> shortcut;
  if (stride != 1 || in != out) {
    auto projection = std::make_unique<Sequential>();
    projection->add(conv(in, out, 1, g, stride, 0, false)).add(batch_norm2d(out));
    shortcut = std::move(projection);
  }
  auto block = std::make_unique<Sequential>();
  block->add(std::make_unique<Residual>(std::move(body), std::move(shortcut))).add(relu());
  return block;
}
}  // namespace

std::unique_ptr<Sequential> make_small_resnet(std::int64_t in_channels, std::int64_t classes,
                                              std::int64_t blocks_per_stage, Generator& init) {
  if (blocks_per_stage < 1) throw std::invalid_argument("make_small_resnet: at least one block per stage");
  auto net = std::make_unique<Sequential>();
  auto stem = std::make_unique<Sequential>();
  stem->add(conv(in_channels, 16, 3, init, 1, 1, false)).add(batch_norm2d(16)).add(relu());
  net->add("stem", std::move(stem));
  std::int64_t channels = 16;
  const std::int64_t widths[3] = {16, 32, 64};
  for (int stage = 0; stage < 3; ++stage) {
    auto blocks = std::make_unique<Sequential>();
    for (std::int64_t b = 0; b < blocks_per_stage; ++b) {
      const std::int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      blocks->add(basic_block(channels, widths[stage], stride, init));
      channels = widths[stage];
    }
    net->add("stage" + std::to_string(stage + 1), std::move(blocks));
  }
  net->add("pool", std::make_unique<AdaptiveAvgPool2d>(1, 1));
  net->add("flatten", std::make_unique<Flatten>());
  net->add("fc", linear(channels, classes, init));
  return net;
}

}  // namespace slurmlab::nn

namespace slurmlab::nn {

namespace {

// airbench94's Conv: 3x3 'same', no bias, the first min(in, out) filters Dirac (identity)
// as torch.nn.init.dirac_ on weight[:in], the rest PyTorch's default.
std::unique_ptr<Layer> airbench_conv(std::int64_t in, std::int64_t out, Generator& g) {
  auto layer = std::make_unique<Conv2d>(in, out, 3, g, 1, 1, false);
  float* w = layer->weight().value.data();
  for (std::int64_t o = 0; o < std::min(in, out); ++o) {
    std::fill(w + o * in * 9, w + (o + 1) * in * 9, 0.0f);
    w[(o * in + o) * 9 + 4] = 1.0f;
  }
  return layer;
}

std::unique_ptr<Layer> airbench_norm(std::int64_t channels, float bias_lr_scale) {
  auto norm = std::make_unique<BatchNorm>(channels, 2, 1e-12f, 0.4f);
  norm->weight().frozen = true;
  norm->bias().lr_scale = bias_lr_scale;
  return norm;
}

std::unique_ptr<Layer> airbench_group(std::int64_t in, std::int64_t out, Generator& g, float bias_lr_scale) {
  auto group = std::make_unique<Sequential>();
  group->add("conv1", airbench_conv(in, out, g)).add("pool", std::make_unique<MaxPool2d>(2));
  group->add("norm1", airbench_norm(out, bias_lr_scale)).add("activ1", gelu());
  group->add("conv2", airbench_conv(out, out, g)).add("norm2", airbench_norm(out, bias_lr_scale)).add("activ2", gelu());
  return group;
}

// Eigenpairs of a symmetric n x n matrix (row-major, destroyed) by cyclic Jacobi rotations, in
// double: values[i] with the eigenvector in column i of `vectors`. n is 12 here (3 x 2 x 2).
void symmetric_eigen(std::vector<double>& a, std::size_t n, std::vector<double>& values, std::vector<double>& vectors) {
  vectors.assign(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) vectors[i * n + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    for (std::size_t p = 0; p < n; ++p)
      for (std::size_t q = p + 1; q < n; ++q) off += a[p * n + q] * a[p * n + q];
    if (off < 1e-30) break;
    for (std::size_t p = 0; p < n; ++p)
      for (std::size_t q = p + 1; q < n; ++q) {
        if (std::abs(a[p * n + q]) < 1e-300) continue;
        const double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * a[p * n + q]);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (std::size_t k = 0; k < n; ++k) {  // A <- A J (columns p, q)
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (std::size_t k = 0; k < n; ++k) {  // A <- J^T A (rows p, q)
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (std::size_t k = 0; k < n; ++k) {  // V <- V J
          const double vkp = vectors[k * n + p], vkq = vectors[k * n + q];
          vectors[k * n + p] = c * vkp - s * vkq;
          vectors[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  values.resize(n);
  for (std::size_t i = 0; i < n; ++i) values[i] = a[i * n + i];
}

}  // namespace

std::unique_ptr<Sequential> make_airbench94(std::int64_t in_channels, std::int64_t classes, Generator& init,
                                            float bias_lr_scale) {
  const std::int64_t whiten_width = 2 * in_channels * 2 * 2;
  auto net = std::make_unique<Sequential>();
  auto whiten = std::make_unique<Conv2d>(in_channels, whiten_width, 2, init, 1, 0, true);
  whiten->weight().frozen = true;  // set by init_patch_whitening (or a checkpoint), never trained
  net->add("whiten", std::move(whiten)).add("whiten_activ", gelu());
  net->add("group1", airbench_group(whiten_width, 64, init, bias_lr_scale));
  net->add("group2", airbench_group(64, 256, init, bias_lr_scale));
  net->add("group3", airbench_group(256, 256, init, bias_lr_scale));
  net->add("pool", std::make_unique<MaxPool2d>(3)).add("flatten", std::make_unique<Flatten>());
  net->add("head", std::make_unique<Linear>(256, classes, init, false)).add("scale", std::make_unique<Scale>(1.0f / 9.0f));
  return net;
}

void init_patch_whitening(Sequential& network, const Tensor& images, double eps) {
  auto* whiten = network.size() > 0 ? dynamic_cast<Conv2d*>(&network[0]) : nullptr;
  if (whiten == nullptr || whiten->weight().value.size(2) != 2 || whiten->weight().value.size(3) != 2) {
    throw std::invalid_argument("init_patch_whitening: the network does not start with a 2x2 convolution (airbench94's)");
  }
  const Tensor host = images.to(Device::cpu);
  const auto c = whiten->weight().value.size(1), out = whiten->weight().value.size(0);
  if (host.shape().size() != 4 || host.size(1) != c || host.size(2) < 2 || host.size(3) < 2 || out != 2 * c * 4) {
    throw std::invalid_argument("init_patch_whitening: images " + to_string(host.shape()) + " do not fit " +
                                whiten->describe());
  }
  const auto n = host.size(0), h = host.size(2), w = host.size(3);
  const std::size_t d = static_cast<std::size_t>(c * 4);
  std::vector<double> moment(d * d, 0.0), patch(d);
  const float* x = host.data();
  for (std::int64_t img = 0; img < n; ++img)
    for (std::int64_t y = 0; y + 1 < h; ++y)
      for (std::int64_t xx = 0; xx + 1 < w; ++xx) {
        for (std::int64_t ch = 0; ch < c; ++ch)
          for (std::int64_t ky = 0; ky < 2; ++ky)
            for (std::int64_t kx = 0; kx < 2; ++kx) {
              patch[static_cast<std::size_t>(ch * 4 + ky * 2 + kx)] = x[((img * c + ch) * h + y + ky) * w + xx + kx];
            }
        for (std::size_t i = 0; i < d; ++i)
          for (std::size_t j = 0; j < d; ++j) moment[i * d + j] += patch[i] * patch[j];
      }
  const double patches = static_cast<double>(n * (h - 1) * (w - 1));
  for (auto& m : moment) m /= patches;
  std::vector<double> values, vectors;
  symmetric_eigen(moment, d, values, vectors);
  std::vector<std::size_t> order(d);
  for (std::size_t i = 0; i < d; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return values[a] > values[b]; });
  Tensor weight = Tensor::zeros(whiten->weight().value.shape());
  float* wv = weight.data();
  for (std::size_t f = 0; f < d; ++f) {
    const std::size_t e = order[f];
    const double norm = 1.0 / std::sqrt(std::max(values[e], 0.0) + eps);
    for (std::size_t k = 0; k < d; ++k) {
      wv[f * d + k] = static_cast<float>(vectors[k * d + e] * norm);
      wv[(f + d) * d + k] = -wv[f * d + k];
    }
  }
  whiten->weight().value = weight.to(whiten->weight().value.device());
  whiten->weight().frozen = true;
}

namespace {

// x flipped left-right (host tensors).
Tensor flipped(const Tensor& x) {
  Tensor out(x.shape());
  const auto w = x.size(3), rows = x.numel() / w;
  const float* in = x.data();
  float* o = out.data();
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < w; ++c) o[r * w + c] = in[r * w + (w - 1 - c)];
  return out;
}

// out[y][x] = in[reflect(y - shift)][reflect(x - shift)]: the image moved by `shift` pixels
// down-right, its border filled by reflection (PyTorch's 'reflect' padding, no edge repeat).
Tensor translated(const Tensor& x, std::int64_t shift) {
  Tensor out(x.shape());
  const auto h = x.size(2), w = x.size(3), planes = x.numel() / (h * w);
  auto reflect = [](std::int64_t i, std::int64_t n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); };
  const float* in = x.data();
  float* o = out.data();
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t c = 0; c < w; ++c) o[(p * h + y) * w + c] = in[(p * h + reflect(y - shift, h)) * w + reflect(c - shift, w)];
  return out;
}

Tensor mirror_mean(Layer& network, const Tensor& host, Device device) {
  const Tensor a = network.forward(host.to(device), Mode::eval).output.to(Device::cpu);
  const Tensor b = network.forward(flipped(host).to(device), Mode::eval).output.to(Device::cpu);
  Tensor out(a.shape());
  for (std::int64_t i = 0; i < a.numel(); ++i) out.data()[i] = 0.5f * a.data()[i] + 0.5f * b.data()[i];
  return out;
}

}  // namespace

Tensor tta_logits(Layer& network, const Tensor& x, int level, Device device) {
  if (level == 0) return network.forward(x.to(device), Mode::eval).output;
  if (level < 0 || level > 2) throw std::invalid_argument("tta_logits: level must be 0, 1 or 2");
  if (x.shape().size() != 4 || x.size(2) < 2 || x.size(3) < 2) {
    throw std::invalid_argument("tta_logits: test-time augmentation needs images [N, C, H, W] of at least 2x2, not " +
                                to_string(x.shape()));
  }
  const Tensor host = x.to(Device::cpu);
  Tensor logits = mirror_mean(network, host, device);
  if (level == 2) {
    const Tensor up_left = mirror_mean(network, translated(host, -1), device);
    const Tensor down_right = mirror_mean(network, translated(host, 1), device);
    for (std::int64_t i = 0; i < logits.numel(); ++i) {
      logits.data()[i] = 0.5f * logits.data()[i] + 0.25f * (up_left.data()[i] + down_right.data()[i]);
    }
  }
  return logits.to(device);
}

}  // namespace slurmlab::nn
