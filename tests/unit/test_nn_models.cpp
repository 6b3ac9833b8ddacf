// Model builders (parameter counts, shapes, names) and the safetensors export read back.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "nn_test_support.hpp"
#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/models/models.hpp"
#include "slurmlab/nn/serialize/safetensors.hpp"

namespace slurmlab::nn {
namespace {

namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  const auto dir = fs::path(SLURMLAB_BINARY_DIR) / "test-scratch" / "nn_models";
  fs::create_directories(dir);
  return dir / name;
}

TEST(Models, ParameterCountsMatchPyTorch) {
  Generator g(1);
  EXPECT_EQ(parameter_count(*make_mlp(1, 64, 1, Activation::tanh, g)), 193);
  // the timing lab's MLP on MNIST: 784*128+128, 128*10+10
  const auto image_mlp = make_image_mlp(784, 128, 10, 0.2f, g);
  EXPECT_EQ(parameter_count(*image_mlp), 100480 + 1290);
  std::vector<std::string> names;
  for (const auto& p : parameters_of(*image_mlp)) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"1.weight", "1.bias", "4.weight", "4.bias"}));
  // its deeper variant (train-classifier's mlp-extra): two more Linear(128, 128) + ReLU,
  // torch.nn.Sequential(Flatten, Linear, ReLU, Dropout, Linear, ReLU, Linear, ReLU, Linear)
  const auto extra_mlp = make_image_mlp(784, 128, 10, 0.2f, g, 2);
  EXPECT_EQ(parameter_count(*extra_mlp), 100480 + 2 * (128 * 128 + 128) + 1290);
  names.clear();
  for (const auto& p : parameters_of(*extra_mlp)) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"1.weight", "1.bias", "4.weight", "4.bias", "6.weight", "6.bias",
                                             "8.weight", "8.bias"}));
  EXPECT_EQ(extra_mlp->forward(Tensor::zeros({3, 1, 28, 28}), Mode::eval).output.shape(), (Shape{3, 10}));
  EXPECT_THROW((void)make_image_mlp(784, 128, 10, 0.2f, g, -1), std::invalid_argument);
  // conv 3*64*25+64, bn 2*64, conv 64*32*25+32, bn 2*32, 800*64+64, 64*32+32, 32*10+10
  EXPECT_EQ(parameter_count(*make_tutorial_cnn(3, 10, 0.5f, g)), 4864 + 128 + 51232 + 64 + 51264 + 2080 + 330);
  // torchvision.models.alexnet(num_classes=10)
  EXPECT_EQ(parameter_count(*make_alexnet(10, 0.5f, g)), 57044810);
  EXPECT_EQ(parameter_count(*make_alexnet(1000, 0.5f, g)), 61100840);
}

TEST(Models, AlexNetNamesAndShapesFollowTorchvision) {
  Generator g(2);
  auto net = make_alexnet(10, 0.5f, g);
  auto params = parameters_of(*net);
  ASSERT_EQ(params.size(), 16u);
  EXPECT_EQ(params[0].name, "features.0.weight");
  EXPECT_EQ(params[0].parameter->value.shape(), (Shape{64, 3, 11, 11}));
  EXPECT_EQ(params[10].name, "classifier.1.weight");
  EXPECT_EQ(params[10].parameter->value.shape(), (Shape{4096, 9216}));
  EXPECT_EQ(params[15].name, "classifier.6.bias");
  Tensor x = testing::random_tensor({2, 3, 64, 64}, g);
  auto f = net->forward(x, Mode::eval);
  EXPECT_EQ(f.output.shape(), (Shape{2, 10}));
}

TEST(Models, TutorialCnnAndResNetTrainOnABatch) {
  Generator g(3);
  for (int which = 0; which < 2; ++which) {
    auto net = which == 0 ? make_tutorial_cnn(3, 10, 0.1f, g) : make_small_resnet(3, 10, 1, g);
    Tensor x = testing::random_tensor({8, 3, 32, 32}, g);
    const std::vector<std::int64_t> labels{0, 1, 2, 3, 4, 5, 6, 7};
    auto first = net->forward(x, Mode::train);
    ASSERT_EQ(first.output.shape(), (Shape{8, 10}));
    auto params = parameters_of(*net);
    double before = softmax_cross_entropy(first.output, labels).loss;
    // Plain gradient descent on one batch must lower its loss.
    double after = before;
    for (int step = 0; step < 5; ++step) {
      zero_grad(*net);
      auto f = net->forward(x, Mode::train);
      auto loss = softmax_cross_entropy(f.output, labels);
      after = loss.loss;
      net->backward(*f.context, loss.grad);
      for (auto& p : params)
        for (std::size_t k = 0; k < p.parameter->value.span().size(); ++k)
          p.parameter->value.span()[k] -= 0.05f * p.parameter->grad.span()[k];
    }
    EXPECT_LT(after, before) << (which == 0 ? "tutorial CNN" : "ResNet-8");
  }
}

TEST(Models, SmallResNetShapesAndNames) {
  Generator g(4);
  auto net = make_small_resnet(2, 3, 1, g);
  Tensor x = testing::random_tensor({2, 2, 8, 8}, g);
  auto f = net->forward(x, Mode::train);
  EXPECT_EQ(f.output.shape(), (Shape{2, 3}));
  std::vector<std::string> names;
  for (auto& p : parameters_of(*net)) names.push_back(p.name);
  EXPECT_EQ(names.front(), "stem.0.weight");
  EXPECT_NE(std::find(names.begin(), names.end(), "stage2.0.0.shortcut.0.weight"), names.end());
  EXPECT_EQ(names.back(), "fc.bias");
}

// airbench94's layout: counts from airbench94.py's make_net() with 10 classes (whiten 3*24*4+24,
// conv weights 24*64*9 + 64*64*9 + 64*256*9 + 2*256*256*9 + 256*256*9, BatchNorm 2*(64+64+256*4),
// head 256*10): 1,972,792 parameters. Frozen: the whitening filters (set from the data, or a
// checkpoint) and the BatchNorm scales; the BatchNorm biases step 64x faster.
TEST(Models, Airbench94ShapesFrozenParametersAndLearningRateScales) {
  Generator init(3);
  auto net = make_airbench94(3, 10, init);
  EXPECT_EQ(parameter_count(*net), 1972792);
  const Tensor y = net->forward(Tensor::zeros({2, 3, 32, 32}), Mode::eval).output;
  EXPECT_EQ(y.shape(), (Shape{2, 10}));
  std::int64_t frozen = 0, fast = 0;
  for (const auto& p : parameters_of(*net)) {
    if (p.parameter->frozen) frozen += p.parameter->value.numel();
    if (p.parameter->lr_scale == 64.0f) fast += p.parameter->value.numel();
  }
  EXPECT_EQ(frozen, 24 * 3 * 2 * 2 + 64 + 64 + 256 * 4);  // whitening filters, BatchNorm weights
  EXPECT_EQ(fast, 64 + 64 + 256 * 4);    // BatchNorm biases
  // Dirac: group1.conv2's filter o passes channel o through unchanged at the centre tap.
  const auto named = parameters_of(*net);
  const auto conv2 = std::find_if(named.begin(), named.end(), [](const auto& p) { return p.name == "group1.conv2.weight"; });
  ASSERT_NE(conv2, named.end());
  EXPECT_EQ(conv2->parameter->value.at({5, 5, 1, 1}), 1.0f);
  EXPECT_EQ(conv2->parameter->value.at({5, 6, 1, 1}), 0.0f);
  EXPECT_EQ(conv2->parameter->value.at({5, 5, 0, 1}), 0.0f);

  // Whitening: the first 12 filters map the images' 2x2 patches to outputs whose second-moment
  // matrix is the identity (eps tiny), the independent truth of a whitening transform.
  Generator data(11);
  Tensor images({40, 3, 12, 12});
  for (std::int64_t n = 0; n < 40; ++n)  // correlated channels and neighbours: far from white
    for (std::int64_t yy = 0; yy < 12; ++yy)
      for (std::int64_t xx = 0; xx < 12; ++xx) {
        const float base = data.normal() + 0.5f * std::sin(0.7f * static_cast<float>(xx + n));
        for (std::int64_t c = 0; c < 3; ++c) images.at({n, c, yy, xx}) = base * (1.0f + 0.3f * static_cast<float>(c)) + 0.2f * data.normal();
      }
  init_patch_whitening(*net, images, 1e-9);
  auto& whiten = dynamic_cast<Conv2d&>((*net)[0]);
  EXPECT_TRUE(whiten.weight().frozen);
  EXPECT_EQ(trainable_parameters_of(*net).size() + 1 + 6, parameters_of(*net).size());  // whiten weight, 6 BN weights
  whiten.bias().value.fill(0.0f);
  const Tensor out = whiten.forward(images, Mode::eval).output;  // [40, 24, 11, 11]
  const std::int64_t positions = 40 * 11 * 11;
  for (int i = 0; i < 12; ++i)
    for (int j = 0; j < 12; ++j) {
      double m = 0.0;
      for (std::int64_t n = 0; n < 40; ++n)
        for (std::int64_t q = 0; q < 121; ++q) m += double(out.data()[(n * 24 + i) * 121 + q]) * out.data()[(n * 24 + j) * 121 + q];
      EXPECT_NEAR(m / positions, i == j ? 1.0 : 0.0, 2e-3) << i << "," << j;
    }
  // The other 12 are their negatives.
  EXPECT_EQ(whiten.weight().value.at({14, 1, 0, 1}), -whiten.weight().value.at({2, 1, 0, 1}));
  EXPECT_THROW(init_patch_whitening(*net, Tensor::zeros({2, 1, 8, 8})), std::invalid_argument);
}

// airbench94's test-time augmentation on a linear network, where the averaged logits are the
// network applied to the averaged images: each image written out by hand (flip: column
// w-1-c; translations by one pixel with reflection, x[-1] = x[1] and x[W] = x[W-2]).
TEST(Models, TestTimeAugmentationAveragesFlipsAndTranslations) {
  Generator init(5);
  Sequential net;
  net.add(std::make_unique<Flatten>()).add(std::make_unique<Linear>(2 * 4 * 5, 3, init));
  Tensor x({2, 2, 4, 5});
  init.fill_uniform(x.span(), -1.0f, 1.0f);
  auto at = [&](const Tensor& t, std::int64_t n, std::int64_t c, std::int64_t y, std::int64_t w) {
    auto r = [](std::int64_t i, std::int64_t size) { return i < 0 ? -i : (i >= size ? 2 * size - 2 - i : i); };
    return t.at({n, c, r(y, 4), r(w, 5)});
  };
  auto image = [&](int kind) {  // 0 plain, 1 flipped, 2/3 shifted up-left/down-right, 4/5 those flipped
    Tensor out(x.shape());
    for (std::int64_t n = 0; n < 2; ++n)
      for (std::int64_t c = 0; c < 2; ++c)
        for (std::int64_t y = 0; y < 4; ++y)
          for (std::int64_t w = 0; w < 5; ++w) {
            const std::int64_t col = kind == 1 || kind >= 4 ? 4 - w : w;
            const std::int64_t shift = kind == 2 || kind == 4 ? 1 : (kind == 3 || kind == 5 ? -1 : 0);
            out.at({n, c, y, w}) = at(x, n, c, y + shift, col + shift);
          }
    return net.forward(out, Mode::eval).output;
  };
  const Tensor plain = tta_logits(net, x, 0, Device::cpu), one = tta_logits(net, x, 1, Device::cpu),
               two = tta_logits(net, x, 2, Device::cpu);
  const Tensor i0 = image(0), i1 = image(1), i2 = image(2), i3 = image(3), i4 = image(4), i5 = image(5);
  for (std::int64_t i = 0; i < plain.numel(); ++i) {
    EXPECT_FLOAT_EQ(plain.data()[i], i0.data()[i]);
    const float mirror = 0.5f * (i0.data()[i] + i1.data()[i]);
    EXPECT_NEAR(one.data()[i], mirror, 1e-6);
    EXPECT_NEAR(two.data()[i], 0.5f * mirror + 0.25f * (i2.data()[i] + i4.data()[i] + i3.data()[i] + i5.data()[i]) * 0.5f,
                1e-6);
  }
  EXPECT_THROW(tta_logits(net, x, 3, Device::cpu), std::invalid_argument);
}

TEST(Safetensors, RoundTripKeepsNamesShapesValuesAndMetadata) {
  Generator g(5);
  auto net = make_tutorial_cnn(3, 10, 0.5f, g);
  const auto path = scratch("cnn.safetensors");
  save_safetensors(path, state_of(*net), {{"format", "pt"}, {"model", "tutorial_cnn"}});
  auto file = load_safetensors(path);
  EXPECT_EQ(file.metadata.at("model"), "tutorial_cnn");
  auto state = state_of(*net);
  ASSERT_EQ(file.tensors.size(), state.size());
  for (const auto& [name, tensor] : state) {
    EXPECT_EQ(file.at(name).shape(), tensor.shape()) << name;
    EXPECT_EQ(file.at(name).to_vector(), tensor.to_vector()) << name;
  }
  // Loading into a differently initialised twin makes it identical.
  Generator other(6);
  auto twin = make_tutorial_cnn(3, 10, 0.5f, other);
  load_state(*twin, file);
  for (auto& p : parameters_of(*twin)) EXPECT_EQ(p.parameter->value.to_vector(), file.at(p.name).to_vector());
  // Header layout: 8-byte length then JSON, data 8-byte aligned.
  std::ifstream in(path, std::ios::binary);
  std::uint64_t length = 0;
  in.read(reinterpret_cast<char*>(&length), 8);
  EXPECT_EQ(length % 8, 0u);
  EXPECT_EQ(static_cast<char>(in.get()), '{');
}

TEST(Safetensors, TruncatedFileIsRefused) {
  Generator g(7);
  auto net = make_mlp(3, 8, 2, Activation::relu, g);
  const auto path = scratch("mlp.safetensors");
  save_safetensors(path, state_of(*net));
  fs::resize_file(path, fs::file_size(path) - 5);
  try {
    load_safetensors(path);
    FAIL() << "a truncated file loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace slurmlab::nn
