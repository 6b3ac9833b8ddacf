#!/usr/bin/env python3
"""The PyTorch peer of fit_epochs: the same standardised split (written by fit_epochs --dump),
the same 1 -> H tanh -> 1 network, full-batch Adam (lr 0.01) and the validation loss every
epoch, as a Lightning-free training loop would do it. Prints one JSON line; the rate is the
median over repeats.

usage: torch_fit_epochs.py DUMP THREADS EPOCHS REPEATS HIDDEN
"""
import json
import statistics
import sys
import time

import torch
from torch import nn


def main():
    path, threads, epochs, repeats, hidden = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    with open(path) as f:
        n_train, n_val = (int(v) for v in f.readline().split())
        rows = [tuple(float(v) for v in line.split()) for line in f]
    data = torch.tensor(rows, dtype=torch.float32)
    x, t = data[:n_train, :1].contiguous(), data[:n_train, 1:].contiguous()
    xv, tv = data[n_train:, :1].contiguous(), data[n_train:, 1:].contiguous()
    rates = []
    for _ in range(repeats):
        torch.manual_seed(1)
        net = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
        start = time.perf_counter()
        for _ in range(epochs):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(net(x), t)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                val = nn.functional.mse_loss(net(xv), tv)
            train_loss, val_loss = loss.item(), val.item()  # logged every epoch, as the program does
        rates.append(epochs / (time.perf_counter() - start))
    print(json.dumps({"framework": f"torch {torch.__version__}", "hidden": hidden, "threads": threads,
                      "train_rows": n_train, "val_rows": n_val, "epochs": epochs,
                      "epochs_per_s": round(statistics.median(rates), 1), "final_val_loss": round(val_loss, 5),
                      "final_train_loss": round(train_loss, 5)}))


if __name__ == "__main__":
    main()
