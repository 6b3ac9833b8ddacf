#!/usr/bin/env python3
"""The PyTorch peer of nn_gpu_train_step: the same models, batch and Adam step on the GPU.

usage: torch_gpu_train_step.py cnn|alexnet fp32|tf32|bf16 eager|compile [batch] [repeats]
  fp32: TF32 off for matmul and cuDNN; tf32: TF32 on for both; bf16: torch.autocast(bfloat16)
  with TF32 on (float32 master weights, as slurmlab's bf16 mode). cudnn.benchmark stays off
  (heuristic algorithm choice, as slurmlab). Prints one JSON line; peak = max_memory_allocated.
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
    model, mode, runner = sys.argv[1], sys.argv[2], sys.argv[3]
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 256
    repeats = int(sys.argv[5]) if len(sys.argv) > 5 else 50
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = mode != "fp32"
    torch.backends.cudnn.allow_tf32 = mode != "fp32"
    torch.backends.cudnn.benchmark = False
    torch.manual_seed(1)
    side = 32 if model == "cnn" else 64
    net = build(model, dropout=0.5)  # the tutorial CNN or AlexNet
    net = net.to(device).train()
    x = torch.randn(batch, 3, side, side, device=device)
    labels = torch.randint(0, 10, (batch,), device=device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    forward = torch.compile(net) if runner == "compile" else net

    def step():
        optimizer.zero_grad()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=mode == "bf16"):
            loss = nn.functional.cross_entropy(forward(x), labels)
        loss.backward()
        optimizer.step()
        return loss.item()  # synchronises, as slurmlab's loss read-back

    warmup = 10 if runner == "compile" else 5
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loss = step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    median = statistics.median(times)
    print(json.dumps({"framework": f"torch {torch.__version__} {runner}", "variant": mode, "model": model,
                      "batch": batch, "median_ms": round(median, 4), "min_ms": round(min(times), 4),
                      "max_ms": round(max(times), 4), "images_per_s": round(1000 * batch / median, 1),
                      "peak_bytes": torch.cuda.max_memory_allocated(), "loss": round(loss, 5),
                      "device": torch.cuda.get_device_name()}))


if __name__ == "__main__":
    main()
