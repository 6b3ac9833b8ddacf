#pragma once
// The networks the suite trains, built from the layers with the parameter names PyTorch gives
// the same architecture (so safetensors files and checkpoints line up with torch state_dicts).
#include <cstdint>
#include <memory>

#include "slurmlab/nn/layers/layers.hpp"

namespace slurmlab::nn {

// Linear(in, hidden) - activation - Linear(hidden, out): names 0.*, 2.*.
std::unique_ptr<Sequential> make_mlp(std::int64_t in, std::int64_t hidden, std::int64_t out, Activation activation,
                                     Generator& init);

// The MLP of UPPMAX's CPU-vs-GPU timing lab for images: Flatten - Linear(in_features, hidden) -
// ReLU - Dropout - Linear(hidden, classes), named as torch.nn.Sequential names them (1.*, 4.*).
// `extra_layers` more Linear(hidden, hidden) - ReLU pairs before the output layer give the
// lab's deeper variant (its "remove the two extra layers: does the time change?"): with 2,
// Flatten - Linear - ReLU - Dropout - Linear - ReLU - Linear - ReLU - Linear (1.*, 4.*, 6.*, 8.*).
std::unique_ptr<Sequential> make_image_mlp(std::int64_t in_features, std::int64_t hidden, std::int64_t classes,
                                           float dropout, Generator& init, int extra_layers = 0);

// The CNN of the PyTorch Lightning tutorial report for 32x32 images, as written there: two
// conv-BN-ReLU-maxpool blocks (5x5 convolutions to 64 then 32 channels, 2x2 pooling: 32 -> 28 -> 14 -> 10 -> 5) and
// linear layers with dropout: 32*5*5 -> 64 -> 32 -> classes. One flat Sequential, indices
// 0..15 as in torch.nn.Sequential.
std::unique_ptr<Sequential> make_tutorial_cnn(std::int64_t in_channels, std::int64_t classes, float dropout,
                                              Generator& init);

// torchvision.models.alexnet: features, AdaptiveAvgPool2d((6, 6)), classifier with dropout;
// 57,044,810 parameters at 10 classes. Accepts inputs from 63x63 up (the 224x224 of
// ImageNet, or 64x64 for a quick run).
std::unique_ptr<Sequential> make_alexnet(std::int64_t classes, float dropout, Generator& init);

// airbench94 (Keller Jordan's cifar10-airbench, airbench94.py), about 2M parameters for 32x32
// images: a 2x2 patch-whitening convolution (in -> 8*in, with bias; its weights frozen, to be
// set by init_patch_whitening from the training images) and GELU; three groups of conv3x3 -> MaxPool 2 -> BatchNorm
// -> GELU -> conv3x3 -> BatchNorm -> GELU (widths 64, 256, 256; convolutions without bias,
// their first in-channels filters Dirac-initialised; BatchNorm eps 1e-12 and momentum 0.4 in
// PyTorch's convention (airbench's 0.6), scales frozen at 1, biases with Parameter::lr_scale
// `bias_lr_scale`, airbench's 64); MaxPool 3; Linear(256, classes) without bias; Scale(1/9).
std::unique_ptr<Sequential> make_airbench94(std::int64_t in_channels, std::int64_t classes, Generator& init,
                                            float bias_lr_scale = 64.0f);

// Sets make_airbench94's first convolution to whiten 2x2 patches of `images` ([N, C, H, W],
// as the network will see them): with (lambda, v) the eigenpairs of the patches' second-moment
// matrix (uncentred, as airbench's), the filters are v / sqrt(lambda + eps), largest lambda
// first, then their negatives; the weights are frozen. Throws std::invalid_argument when the
// network's first layer is not such a convolution or the images do not match it.
void init_patch_whitening(Sequential& network, const Tensor& images, double eps = 5e-4);

// Test-time augmentation (airbench94's infer): the eval-mode logits of `network` for images
// `x` ([N, C, H, W], on any device; the result is on the network's device `device`). Level 0:
// network(x); 1: the mean over x and x flipped left-right; 2: half of level 1 plus half the mean
// of level 1 on x translated by one pixel up-left and down-right (reflection padding).
Tensor tta_logits(Layer& network, const Tensor& x, int level, Device device);

// A small ResNet for 32x32 images (He et al.'s CIFAR family): a 3x3 stem to 16 channels, three
// stages of `blocks_per_stage` basic blocks with 16, 32, 64 channels (stride 2 into stages 2
// and 3, 1x1 conv + BN shortcuts where the shape changes), global average pooling and a
// linear classifier. blocks_per_stage = 1 gives ResNet-8, 3 gives ResNet-20.
std::unique_ptr<Sequential> make_small_resnet(std::int64_t in_channels, std::int64_t classes,
                                              std::int64_t blocks_per_stage, Generator& init);

}  // namespace slurmlab::nn
