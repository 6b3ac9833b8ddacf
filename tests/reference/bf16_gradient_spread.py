#!/usr/bin/env python3
"""How far PyTorch's own bf16 autocast gradients lie from float32 ones, on the shapes of
tests/gpu/test_nn_cuda.cpp's bf16 tests (the MLP 64-128-10 with ReLU and the tutorial CNN, batches
of 32): the norm error |g_bf16 - g_fp32| / max(|g_fp32|, 1% of the largest gradient norm), worst
over 5 seeds, per parameter. The bf16 tests' tolerances sit just above these figures.

usage: python3 tests/reference/bf16_gradient_spread.py   (Debian's python3-torch; CPU autocast)
2026-12-04, torch 1.13: MLP 0.086 (0.weight), tutorial CNN 0.19 (5.bias).
"""
import torch
import torch.nn as nn


def spread(make, make_input, loss_of, seeds=5):
    worst = {}
    for seed in range(seeds):
        torch.manual_seed(seed)
        net = make().train()
        x = make_input()
        state = {k: v.clone() for k, v in net.state_dict().items()}

        def gradients(bf16):
            net.load_state_dict(state)  # batch norm's running statistics as before
            net.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = net(x)
            loss_of(out.float(), seed).backward()
            return {n: p.grad.clone() for n, p in net.named_parameters()}

        exact, low = gradients(False), gradients(True)
        floor = 1e-2 * max(g.norm().item() for g in exact.values())
        for name, g in exact.items():
            error = ((low[name] - g).norm() / max(g.norm().item(), floor)).item()
            worst[name] = max(worst.get(name, 0.0), error)
    return worst


def weighted_sum(out, seed):
    w = torch.rand(out.shape, generator=torch.Generator().manual_seed(100 + seed)) * 2 - 1
    return (out * w).sum()


def cross_entropy(out, seed):
    labels = torch.randint(0, 10, (out.shape[0],), generator=torch.Generator().manual_seed(200 + seed))
    return nn.functional.cross_entropy(out, labels)


def tutorial_cnn():
    return nn.Sequential(nn.Conv2d(3, 64, 5), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(64, 32, 5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(800, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


if __name__ == "__main__":
    for label, make, make_input, loss_of in [
        ("MLP 64-128-10 (ReLU)", lambda: nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)),
         lambda: torch.rand(32, 64) * 2 - 1, weighted_sum),
        ("tutorial CNN", tutorial_cnn, lambda: torch.rand(32, 3, 32, 32) * 2 - 1, cross_entropy),
    ]:
        worst = spread(make, make_input, loss_of)
        name = max(worst, key=worst.get)
        print(f"{label}: worst {worst[name]:.3f} ({name}); " + ", ".join(f"{k} {v:.3f}" for k, v in worst.items()))
