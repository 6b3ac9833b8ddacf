#!/usr/bin/env python3
"""Real data through the MNIST (IDX) reader: scikit-learn's 8x8 digits, written to IDX here
(train: the first 1500, plain; test: the other 297, gzipped), read back by dump_image_dataset
(open_image_dataset "mnist:DIR"), and compared with what sklearn gives, pixel by pixel.

    sklearn_digits_test.py DUMPER WORK_DIR
"""
import gzip
import pathlib
import shutil
import struct
import subprocess
import sys

import numpy as np
from sklearn.datasets import load_digits


def idx_images(images):
    n, rows, cols = images.shape
    return struct.pack(">IIII", 0x00000803, n, rows, cols) + images.astype(np.uint8).tobytes()


def idx_labels(labels):
    return struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes()


def main():
    dumper, work = sys.argv[1], pathlib.Path(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    digits = load_digits()
    images = digits.images.astype(np.uint8)  # values 0..16, exact in uint8
    assert (images == digits.images).all()
    labels = digits.target
    split = 1500
    (work / "train-images-idx3-ubyte").write_bytes(idx_images(images[:split]))
    (work / "train-labels-idx1-ubyte").write_bytes(idx_labels(labels[:split]))
    (work / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_images(images[split:])))
    (work / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_labels(labels[split:])))

    failures = 0
    for name, want_images, want_labels in (("train", images[:split], labels[:split]),
                                           ("test", images[split:], labels[split:])):
        out = subprocess.run([dumper, f"mnist:{work}", name], check=True, capture_output=True, text=True).stdout
        lines = out.splitlines()
        size, channels, height, width, classes = map(int, lines[0].split())
        got = np.array([list(map(int, line.split())) for line in lines[1:]], dtype=np.int64)
        checks = {
            "header": (size, channels, height, width, classes) == (len(want_labels), 1, 8, 8, 10),
            "labels": got.shape[0] == size and (got[:, 0] == want_labels).all(),
            "pixels": (got[:, 1:].reshape(-1, 8, 8) == want_images).all(),
        }
        for what, ok in checks.items():
            print(f"{name}: {what} {'ok' if ok else 'WRONG'}")
            failures += not ok
        print(f"{name}: {size} digits compared with sklearn.datasets.load_digits")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
