#!/usr/bin/env python3
"""The PyTorch peer of nn_train_step: the same models, batch and Adam step, median time.

usage: torch_train_step.py mlp|cnn|alexnet THREADS [repeats] [fp32|bf16]   (prints one JSON line)
bf16: forward under torch.autocast("cpu", dtype=torch.bfloat16) (convolutions and linear layers
in bf16, the loss in fp32), the peer of nn_train_step's bf16.
"""
import json
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, __file__.rsplit("/", 3)[0] + "/tests/reference")
from compare_with_torch import build  # noqa: E402  (the models as slurmlab::nn builds them)


def main():
    model, threads = sys.argv[1], int(sys.argv[2])
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    precision = sys.argv[4] if len(sys.argv) > 4 else "fp32"
    if precision not in ("fp32", "bf16"):
        sys.exit(f"torch_train_step.py: precision {precision!r} is not fp32 or bf16")
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    if model == "mlp":
        batch = 1400
        net = build("mlp")
        x = torch.rand(batch, 1) * 2
        target = 5 * x + torch.randn(batch, 1)
        criterion = lambda out: nn.functional.mse_loss(out, target)
    else:
        batch = 64
        side = 32 if model == "cnn" else 64
        net = build(model, dropout=0.5)  # the tutorial CNN or AlexNet
        x = torch.randn(batch, 3, side, side)
        labels = torch.randint(0, 10, (batch,))
        criterion = lambda out: nn.functional.cross_entropy(out, labels)
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    times = []
    for r in range(repeats + 3):
        start = time.perf_counter()
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = net(x)
        loss = criterion(out.float())
        loss.backward()
        optimizer.step()
        stop = time.perf_counter()
        if r >= 3:
            times.append((stop - start) * 1000)
    median = statistics.median(times)
    print(json.dumps({"framework": f"torch {torch.__version__}", "model": model, "precision": precision,
                      "batch": batch, "threads": threads,
                      "median_ms": round(median, 4), "min_ms": round(min(times), 4), "max_ms": round(max(times), 4),
                      "samples_per_s": round(1000 * batch / median, 1), "loss": round(loss.item(), 5)}))


if __name__ == "__main__":
    main()
