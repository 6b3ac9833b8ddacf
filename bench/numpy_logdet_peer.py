#!/usr/bin/python3
"""The peer of bench/logdet_bench: numpy (Debian's python3-numpy, on the same OpenBLAS)
computing log det C for C = L L^T from the very same Cholesky factor L (raw float64,
row-major d x d, written by logdet_bench). Two ways users write it:
  cholesky: C = L @ L.T; 2 * sum(log(diag(numpy.linalg.cholesky(C))))
  slogdet:  C = L @ L.T; numpy.linalg.slogdet(C)   (LU)
Threads: set OPENBLAS_NUM_THREADS before starting it (the bench does).
Prints one line: median seconds (cholesky, slogdet) and the two log dets."""
import sys
import time

import numpy as np


def main():
    path, dim, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    factor = np.fromfile(path, dtype=np.float64).reshape(dim, dim)
    chol_times, slog_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        c = factor @ factor.T
        log_det_chol = 2.0 * np.sum(np.log(np.diag(np.linalg.cholesky(c))))
        chol_times.append(time.perf_counter() - start)
        del c
        start = time.perf_counter()
        c = factor @ factor.T
        sign, log_det_slog = np.linalg.slogdet(c)
        slog_times.append(time.perf_counter() - start)
        del c
    print(f"{np.median(chol_times):.6e} {np.median(slog_times):.6e} {log_det_chol:.17g} {sign * 0 + log_det_slog:.17g}")


if __name__ == "__main__":
    main()
