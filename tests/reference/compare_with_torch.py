#!/usr/bin/env python3
"""Recomputes a reference_case in PyTorch and checks slurmlab::nn against it.

usage: compare_with_torch.py mlp|cnn|alexnet DIR    (exit 77 = skipped: no torch)

The safetensors files are read with json + numpy straight from the format's definition
(8-byte little-endian header length, JSON header, raw data), independent of the C++ reader.

Tolerances (relative to the largest magnitude in each tensor, since summation order differs
between im2col+OpenBLAS and PyTorch's kernels):
  logits 1e-4, loss 1e-5, BatchNorm running statistics 1e-5,
  parameter gradients 1e-3 (relative to at least 1e-3 of the network's largest gradient
  entry, see below), the 10 Adam-step losses 5e-4 (relative, per step: Adam divides by
  sqrt(v), so entries with near-zero gradients amplify round-off; AlexNet reaches ~1e-4).
"""
import json
import struct
import sys

import numpy as np

try:
    import torch
    from torch import nn
except ImportError:
    print("SKIP: PyTorch is not importable by", sys.executable, "(Debian: apt install python3-torch)")
    sys.exit(77)


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + length])
    data = blob[8 + length :]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        assert entry["dtype"] == "F32", (name, entry["dtype"])
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(entry["shape"]).copy()
    return tensors


class AlexNet(nn.Module):
    """torchvision.models.alexnet, written out (torchvision is not needed)."""

    def __init__(self, num_classes=10, dropout=0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def build(model, dropout=0.0):
    """The MLP, the Lightning tutorial CNN or AlexNet, as slurmlab::nn builds them (the
    reference comparison uses dropout 0; the benchmarks train with 0.5)."""
    if model == "mlp":
        return nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 1))
    if model == "cnn":
        return nn.Sequential(
            nn.Conv2d(3, 64, 5), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 32, 5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 5 * 5, 64), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(64, 32), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(32, 10),
        )
    return AlexNet(10, dropout=dropout)


def main():
    model, folder = sys.argv[1], sys.argv[2]
    weights = read_safetensors(f"{folder}/weights.safetensors")
    inputs = read_safetensors(f"{folder}/inputs.safetensors")
    ours = read_safetensors(f"{folder}/results.safetensors")
    net = build(model)
    state = {}
    for name, value in weights.items():
        t = torch.from_numpy(value)
        state[name] = t.to(torch.int64) if name.endswith("num_batches_tracked") else t
    net.load_state_dict(state, strict=True)
    net.train()
    x = torch.from_numpy(inputs["x"])
    if model == "mlp":
        target = torch.from_numpy(inputs["target"])
        criterion = lambda out: nn.functional.mse_loss(out, target)
    else:
        labels = torch.from_numpy(inputs["labels"]).to(torch.int64)
        criterion = lambda out: nn.functional.cross_entropy(out, labels)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4 if model == "alexnet" else 1e-3)

    failures = []

    def check(what, mine, theirs, tolerance, floor=1e-12):
        theirs = np.asarray(theirs, dtype=np.float64)
        mine = np.asarray(mine, dtype=np.float64).reshape(theirs.shape)
        scale = max(float(np.max(np.abs(theirs))) if theirs.size else 0.0, floor)
        error = float(np.max(np.abs(mine - theirs))) / scale if theirs.size else 0.0
        line = f"{what:40s} relative error {error:.2e} (tolerance {tolerance:.0e})"
        print(line)
        if not error <= tolerance:
            failures.append(line)

    losses = []
    for step in range(10):
        optimizer.zero_grad()
        out = net(x)
        loss = criterion(out)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            # A conv bias followed by BatchNorm has an exact gradient of zero (the batch mean
            # absorbs it); both sides return round-off there, so gradients are compared
            # relative to at least 1e-3 of the largest gradient entry of the whole network.
            gradient_floor = 1e-3 * max(float(p.grad.abs().max()) for p in net.parameters())
            check("logits", ours["logits"], out.detach().numpy(), 1e-4)
            check("loss", ours["loss"], [loss.item()], 1e-5)
            for name, p in net.named_parameters():
                check("grad." + name, ours["grad." + name], p.grad.numpy(), 1e-3, gradient_floor)
            for name, b in net.named_buffers():
                if not name.endswith("num_batches_tracked"):
                    check("buffer." + name, ours["buffer." + name], b.numpy(), 1e-5)
        optimizer.step()
    if len(ours["adam_losses"]) != len(losses):
        failures.append(f"adam losses: slurmlab wrote {len(ours['adam_losses'])} steps, PyTorch ran {len(losses)}")
    for step, (mine, theirs) in enumerate(zip(ours["adam_losses"], losses)):
        check(f"adam step {step} loss", [mine], [theirs], 5e-4)
    if failures:
        print(f"{len(failures)} comparisons outside tolerance:", *failures, sep="\n  ")
        sys.exit(1)
    print(f"{model}: every comparison within tolerance (torch {torch.__version__})")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
