"""Runs tools/plot.py on a metrics.h5 written by write_sample_metrics and checks what it drew.

usage: plot_tool_test.py PLOT_PY METRICS_H5 OUTPUT_DIR     (exit 77: matplotlib or h5py missing)
"""
import os
import shutil
import subprocess
import sys

try:
    import h5py  # noqa: F401
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.image
    import numpy as np
except ImportError as missing:
    print(f"SKIP: {missing}; install python3-matplotlib python3-h5py (bash env/debian.sh does)")
    sys.exit(77)

plot_py, metrics, out_dir = sys.argv[1:4]
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL:", what)


def run(*args):
    return subprocess.run([sys.executable, plot_py, *args], capture_output=True, text=True)


shutil.rmtree(out_dir, ignore_errors=True)
result = run(metrics, "-o", out_dir)
print(result.stdout, result.stderr)
check(result.returncode == 0, f"exit status {result.returncode}")
expected = {"train.png", "ranks-table.png", "histograms.png"}
check(set(os.listdir(out_dir)) == expected, f"files {sorted(os.listdir(out_dir))}, expected {sorted(expected)}")

# The table is printed as text too, in env-dump's column order (rank, host, then the rest), every row.
lines = result.stdout.splitlines()
header = next((l for l in lines if l.split()[:1] == ["rank"]), "")
check(header.split() == ["rank", "host", "busy_fraction"], f"table header {header!r}")
check(any(l.split()[:3] == ["3", "ünïcødé-节点", "0.0"] for l in lines if l.strip()), "last table row")

for name in expected & set(os.listdir(out_dir)):
    image = matplotlib.image.imread(os.path.join(out_dir, name))
    rgb = (image[..., :3] * 255).round()
    check(image.shape[0] > 100 and image.shape[1] > 300, f"{name} size {image.shape}")
    check((rgb < 200).any(axis=-1).mean() > 0.002, f"{name} is not blank")

# The loss line is drawn in matplotlib's first colour (C0 = #1f77b4).
train = (matplotlib.image.imread(os.path.join(out_dir, "train.png"))[..., :3] * 255).round()
c0 = np.array([0x1F, 0x77, 0xB4])
check((np.abs(train - c0).max(axis=-1) <= 10).sum() > 500, "the loss line is drawn")
# The 2x3 heat map uses viridis: its brightest cell (5) is yellow.
heat = (matplotlib.image.imread(os.path.join(out_dir, "histograms.png"))[..., :3] * 255).round()
check((np.abs(heat - np.array([0xFD, 0xE7, 0x25])).max(axis=-1) <= 6).sum() > 1000, "the heat map's largest cell")

listing = run(metrics, "--list")
check(listing.returncode == 0 and "train/loss  float64 (4,)" in listing.stdout, f"--list output {listing.stdout!r}")
check("@program = write_sample_metrics" in listing.stdout, "--list shows root attributes")

only = run(metrics, "-g", "train", "--format", "svg", "--log-y", "-o", out_dir + "-svg")
check(only.returncode == 0 and os.listdir(out_dir + "-svg") == ["train.svg"], f"--group train: {only.stdout}")

bad = run(metrics, "-g", "nonesuch")
check(bad.returncode == 2 and "nonesuch" in bad.stderr and "--list" in bad.stderr, f"unknown group: {bad.stderr!r}")
missing = run(metrics + ".absent")
check(missing.returncode == 2 and "does not exist" in missing.stderr, f"missing file: {missing.stderr!r}")
helptext = run("--help")
check(helptext.returncode == 0 and "Examples:" in helptext.stdout, "--help documents usage")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("tools/plot.py: line chart, table and heat map drawn from metrics.h5")
