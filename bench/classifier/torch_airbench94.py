"""airbench94 (Keller Jordan, github.com/KellerJordan/cifar10-airbench, airbench94.py) restated in
plain PyTorch as the peer of `train-classifier fit --preset airbench94`: the same network
(whitening conv, three conv groups, MaxPool 3, bias-free head, x 1/9), the same recipe (SGD
Nesterov with the BatchNorm biases in a 64x group, summed label-smoothed loss, the triangle
schedule, flip and 2-pixel reflect-padded translation done on whole tensors, whitening from
the first 5000 training images) on CIFAR-10's binary files. It times training only.

usage: torch_airbench94.py CIFAR_DIR THREADS BATCHES [--device cpu|cuda] [--compile] [--bf16]
  BATCHES: training batches of 1024 to time (the first epoch's first BATCHES).
Prints one JSON line: images/s over the timed batches (first batch start to last step end),
after one untimed warm-up step (torch.compile's compilation, cuDNN's algorithm search).
On a GPU (--device cuda) it runs as airbench does: fp16 inputs and weights with float
BatchNorm, channels_last; --compile wraps the model in torch.compile (torch >= 2). --bf16 (on the
CPU) runs the forward under torch.autocast("cpu", dtype=torch.bfloat16), the peer of
train-classifier --precision bf16 on the CPU.
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HYP = {"lr": 11.5, "momentum": 0.85, "weight_decay": 0.0153, "bias_scaler": 64.0, "label_smoothing": 0.2,
       "batch_size": 1024, "epochs": 10, "widths": (64, 256, 256), "bn_momentum": 0.6, "scaling": 1 / 9}
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def read_cifar(directory):
    records = []
    for i in range(1, 6):
        raw = np.fromfile(os.path.join(directory, f"data_batch_{i}.bin"), dtype=np.uint8)
        records.append(raw.reshape(-1, 3073))
    data = np.concatenate(records)
    labels = torch.from_numpy(data[:, 0].astype(np.int64))
    images = torch.from_numpy(data[:, 1:].reshape(-1, 3, 32, 32).copy())
    return images, labels


class BatchNorm(nn.BatchNorm2d):
    def __init__(self, channels, momentum, eps=1e-12):
        super().__init__(channels, eps=eps, momentum=1 - momentum)
        self.weight.requires_grad = False


class Conv(nn.Conv2d):
    def __init__(self, channels_in, channels_out):
        super().__init__(channels_in, channels_out, kernel_size=3, padding=1, bias=False)

    def reset_parameters(self):
        super().reset_parameters()
        w = self.weight.data
        torch.nn.init.dirac_(w[:w.size(1)])


class ConvGroup(nn.Module):
    def __init__(self, channels_in, channels_out, momentum):
        super().__init__()
        self.conv1 = Conv(channels_in, channels_out)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = BatchNorm(channels_out, momentum)
        self.conv2 = Conv(channels_out, channels_out)
        self.norm2 = BatchNorm(channels_out, momentum)
        self.activ = nn.GELU()

    def forward(self, x):
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        return self.activ(self.norm2(self.conv2(x)))


class Mul(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale


def make_net():
    w1, w2, w3 = HYP["widths"]
    return nn.Sequential(
        nn.Conv2d(3, 24, kernel_size=2, padding=0, bias=True), nn.GELU(),
        ConvGroup(24, w1, HYP["bn_momentum"]), ConvGroup(w1, w2, HYP["bn_momentum"]),
        ConvGroup(w2, w3, HYP["bn_momentum"]),
        nn.MaxPool2d(3), nn.Flatten(), nn.Linear(w3, 10, bias=False), Mul(HYP["scaling"]))


def init_whitening(layer, images, eps=5e-4):
    patches = images.unfold(2, 2, 1).unfold(3, 2, 1).transpose(1, 3).reshape(-1, 3, 2, 2).float()
    flat = patches.view(len(patches), -1)
    covariance = flat.T @ flat / len(flat)
    values, vectors = torch.linalg.eigh(covariance, UPLO="U")
    values, vectors = values.flip(0).view(-1, 1, 1, 1), vectors.T.reshape(12, 3, 2, 2).flip(0)
    scaled = vectors / torch.sqrt(values + eps)
    layer.weight.data[:] = torch.cat((scaled, -scaled))
    layer.weight.requires_grad = False


def batch_crop(padded, size, r=2):
    shifts = torch.randint(-r, r + 1, size=(len(padded), 2), device=padded.device)
    out = torch.empty((len(padded), 3, size, size), device=padded.device, dtype=padded.dtype)
    for sy in range(-r, r + 1):
        for sx in range(-r, r + 1):
            mask = (shifts[:, 0] == sy) & (shifts[:, 1] == sx)
            out[mask] = padded[mask, :, r + sy:r + sy + size, r + sx:r + sx + size]
    return out


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    directory, threads, batches = argv[1], int(argv[2]), int(argv[3])
    device = argv[argv.index("--device") + 1] if "--device" in argv else "cpu"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    images, labels = read_cifar(directory)
    dtype = torch.half if device == "cuda" else torch.float
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    images = ((images.float() / 255 - mean) / std).to(device)
    labels = labels.to(device)
    # The loader's first epoch: pre-flip half the images, pre-pad by reflection, crop.
    flip = (torch.rand(len(images), device=device) < 0.5).view(-1, 1, 1, 1)
    flipped = torch.where(flip, images.flip(-1), images)
    padded = F.pad(flipped, (2,) * 4, "reflect")

    model = make_net().to(device)
    init_whitening(model[0], images[:5000])
    if device == "cuda":  # as airbench94.py: half weights, float BatchNorm, channels_last
        model = model.half().to(memory_format=torch.channels_last)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.float()
    batch = HYP["batch_size"]
    kilostep = 1024 * (1 + 1 / (1 - HYP["momentum"]))
    lr = HYP["lr"] / kilostep
    wd = HYP["weight_decay"] * batch / kilostep
    lr_biases = lr * HYP["bias_scaler"]
    norm_biases = [p for k, p in model.named_parameters() if "norm" in k and p.requires_grad]
    others = [p for k, p in model.named_parameters() if "norm" not in k and p.requires_grad]
    optimizer = torch.optim.SGD([dict(params=norm_biases, lr=lr_biases, weight_decay=wd / lr_biases),
                                 dict(params=others, lr=lr, weight_decay=wd / lr)],
                                momentum=HYP["momentum"], nesterov=True)
    total_steps = math.ceil(HYP["epochs"] * len(images) / batch)

    def get_lr(step):
        warmup = int(total_steps * 0.23)
        if step < warmup:
            frac = step / warmup
            return 0.2 * (1 - frac) + frac
        frac = (step - warmup) / (total_steps - warmup)
        return (1 - frac) + 0.07 * frac

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, get_lr)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=HYP["label_smoothing"], reduction="none")
    step_model = torch.compile(model) if "--compile" in argv else model
    model.train()

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    bf16 = "--bf16" in argv
    if bf16 and device != "cpu":
        sys.exit("torch_airbench94.py: --bf16 is the CPU's autocast; on a GPU the peer runs in fp16 as airbench does")

    def train_step(inputs, targets):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            outputs = step_model(inputs)
        loss = loss_fn(outputs.float(), targets).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        return loss

    # One untimed step first: torch.compile compiles on its first call, and cuDNN picks its
    # algorithms (train-classifier's own first-batch costs are inside its figure).
    warm = batch_crop(padded[:batch], 32).to(dtype)
    train_step(warm.to(memory_format=torch.channels_last) if device == "cuda" else warm, labels[:batch])
    sync()
    start = time.perf_counter()
    # The epoch's random translation, over the images the timed batches use (airbench crops the
    # whole set once per epoch: the same work per image).
    order = torch.randperm(len(images), device=device)[:batches * batch]
    epoch_images = batch_crop(padded[order], 32).to(dtype)
    epoch_labels = labels[order]
    if device == "cuda":
        epoch_images = epoch_images.to(memory_format=torch.channels_last)
    seen = 0
    for i in range(batches):
        inputs, targets = epoch_images[i * batch:(i + 1) * batch], epoch_labels[i * batch:(i + 1) * batch]
        loss = train_step(inputs, targets)
        seen += len(inputs)
    sync()
    seconds = time.perf_counter() - start
    print(json.dumps({"framework": f"torch {torch.__version__}", "mode": "torch-compile" if "--compile" in argv else "torch",
                      "threads": threads, "batches": batches, "images_per_s": seen / seconds,
                      "loss": float(loss) / len(inputs)}))


if __name__ == "__main__":
    main(sys.argv)
