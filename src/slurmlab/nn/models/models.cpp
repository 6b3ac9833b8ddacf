#include "slurmlab/nn/models/models.hpp"

#include <stdexcept>

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
