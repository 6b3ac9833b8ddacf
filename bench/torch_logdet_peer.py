#!/usr/bin/python3
"""The PyTorch peer of bench/logdet_bench (Debian's python3-torch, CPU, float64):
  full: what users run per matrix: L = LKJCholesky(d, eta).sample(); C = L @ L.T; torch.logdet(C)
        (its sampler draws Beta(i - 1/2, ...), not LKJ for d >= 3, but it is what people time)
  det:  the determinant alone on the very same L as ours (read from disk): C = L @ L.T; torch.logdet(C)
Threads: torch.set_num_threads(argv[4]) (the bench also sets OMP/OPENBLAS_NUM_THREADS).
Device: argv[5], cpu (default) or cuda (timed with torch.cuda.synchronize()).
Prints one line: median seconds (full, det) and the det route's log det."""
import sys
import time

import numpy as np
import torch
from torch.distributions import LKJCholesky


def main():
    path, dim, repeats, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    device = torch.device(sys.argv[5] if len(sys.argv) > 5 else "cpu")
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    factor = torch.from_numpy(np.fromfile(path, dtype=np.float64).reshape(dim, dim)).to(device)
    distribution = LKJCholesky(dim, torch.tensor(1.0, dtype=torch.float64, device=device))

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    torch.logdet(factor @ factor.T)  # warm-up (CUDA context, kernels)
    full, det = [], []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        sample = distribution.sample()
        value = torch.logdet(sample @ sample.T)
        sync()
        full.append(time.perf_counter() - start)
        del sample, value
        sync()
        start = time.perf_counter()
        log_det = torch.logdet(factor @ factor.T).item()
        det.append(time.perf_counter() - start)
    print(f"{np.median(full):.6e} {np.median(det):.6e} {log_det:.17g}")


if __name__ == "__main__":
    main()
