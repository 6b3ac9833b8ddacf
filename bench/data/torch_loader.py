#!/usr/bin/env python3
"""PyTorch's DataLoader + torchvision transforms on the same CIFAR-10-sized binary batches as
loader_bench: the AlexNet practical's training transforms (resize 70x70, random crop 64x64,
horizontal flip, to tensor, normalize), batch 256, shuffle, drop_last.

Two ways users write it, both timed:
  pil     torchvision.datasets.CIFAR10's way: each image a PIL image, transforms on PIL, then
          ToTensor and Normalize (the course's own code). PIL's Resize antialiases.
  tensor  transforms on uint8 tensors (ConvertImageDtype, Resize(antialias=False), RandomCrop,
          RandomHorizontalFlip, Normalize): the same arithmetic as slurmlab's.

usage: torch_loader.py DIR WORKERS [BATCHES] [REPEATS]
Prints one JSON line per mode: framework, mode, workers, images_per_s (median over repeats).
"""
import json
import pathlib
import statistics
import sys
import time

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class CifarInMemory(torch.utils.data.Dataset):
    def __init__(self, directory, mode):
        records = np.concatenate([np.fromfile(pathlib.Path(directory) / f"data_batch_{b}.bin", dtype=np.uint8)
                                  .reshape(-1, 3073) for b in range(1, 6)])
        self.labels = records[:, 0].astype(np.int64)
        self.images = np.ascontiguousarray(records[:, 1:].reshape(-1, 3, 32, 32))
        self.mode = mode
        if mode == "pil":
            self.hwc = np.ascontiguousarray(self.images.transpose(0, 2, 3, 1))  # as datasets.CIFAR10 holds them
            self.transform = T.Compose([T.Resize((70, 70)), T.RandomCrop(64), T.RandomHorizontalFlip(),
                                        T.ToTensor(), T.Normalize(MEAN, STD)])
        else:
            self.transform = T.Compose([T.ConvertImageDtype(torch.float32), T.Resize((70, 70), antialias=False),
                                        T.RandomCrop(64), T.RandomHorizontalFlip(), T.Normalize(MEAN, STD)])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        if self.mode == "pil":
            image = Image.fromarray(self.hwc[i])
        else:
            image = torch.from_numpy(self.images[i])
        return self.transform(image), int(self.labels[i])


def rate(dataset, workers, batches):
    loader = torch.utils.data.DataLoader(dataset, batch_size=256, shuffle=True, drop_last=True, num_workers=workers)
    it = iter(loader)
    checksum = float(next(it)[0][0, 0, 0, 0])  # warm-up: workers started, first batches queued
    start = time.perf_counter()
    for b in range(batches):
        x, y = next(it)
        checksum += float(x[0, 0, 0, b % 64]) + float(y[0])
    seconds = time.perf_counter() - start
    del it
    return batches * 256 / seconds


def main():
    directory, workers = sys.argv[1], int(sys.argv[2])
    batches = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    torch.set_num_threads(1)
    for mode in ("pil", "tensor"):
        dataset = CifarInMemory(directory, mode)
        rates = [rate(dataset, workers, batches) for _ in range(repeats)]
        print(json.dumps({"framework": f"torch {torch.__version__} / torchvision {torchvision.__version__}",
                          "mode": mode, "workers": workers, "images_per_s": round(statistics.median(rates), 1),
                          "best": round(max(rates), 1)}), flush=True)


if __name__ == "__main__":
    main()
