#!/usr/bin/env python3
"""train-classifier learns real images: scikit-learn's 8x8 digits (1797 scans shipped with
Debian's python3-sklearn, no download), written as MNIST IDX files (the first 1500 to train,
the other 297 to test, as tests/unit/sklearn_digits_test.py writes them), trained with the
tutorial CNN on 32x32 upscales, and the best checkpoint's test accuracy must clear 93 %.

    train_classifier_digits_test.py PROGRAM WORK_DIR
"""
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
from sklearn.datasets import load_digits

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "unit"))
from sklearn_digits_test import idx_images, idx_labels  # noqa: E402


def main():
    program, work = sys.argv[1], pathlib.Path(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    (work / "digits").mkdir(parents=True)
    digits = load_digits()
    # 0..16 grey levels scaled to 0..255, as an MNIST scan would hold them.
    images = np.clip(digits.images * 16, 0, 255).astype(np.uint8)
    labels = digits.target
    split = 1500
    (work / "digits" / "train-images-idx3-ubyte").write_bytes(idx_images(images[:split]))
    (work / "digits" / "train-labels-idx1-ubyte").write_bytes(idx_labels(labels[:split]))
    (work / "digits" / "t10k-images-idx3-ubyte").write_bytes(idx_images(images[split:]))
    (work / "digits" / "t10k-labels-idx1-ubyte").write_bytes(idx_labels(labels[split:]))
    run = subprocess.run(
        [program, "fit", "--data", f"mnist:{work / 'digits'}", "--resize", "32", "--epochs", "5",
         "--batch-size", "32", "--val-size", "200", "--output-dir", str(work / "run"), "--loader-threads", "1",
         "--seed", "2"],
        capture_output=True, text=True, env={"OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    print(run.stdout[-3000:], run.stderr[-2000:])
    if run.returncode != 0:
        sys.exit(f"train-classifier failed with exit {run.returncode}")
    if "SYNTHETIC" in run.stdout:
        sys.exit("the digits were not used")
    report = (work / "run" / "test_report.txt").read_text()
    accuracy = float(re.search(r"accuracy ([0-9.]+)%", report).group(1))
    samples = int(re.search(r"on ([0-9]+) images", report).group(1))
    print(f"test accuracy on the {samples} held-out digits: {accuracy}%")
    if samples != len(labels) - split:
        sys.exit(f"tested {samples} digits, not {len(labels) - split}")
    if accuracy < 93.0:
        sys.exit(f"test accuracy {accuracy}% is below 93%")


if __name__ == "__main__":
    main()
