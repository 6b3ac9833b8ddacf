"""tools/plot.py re-draws the programs' own figures from their metrics.h5: runs logdet-histogram
and fit-regression (small, CPU), then plot.py, and checks each figure against the file's data.

usage: plot_programs_test.py PLOT_PY LOGDET_BIN FIT_BIN OUTPUT_DIR   (exit 77: h5py/matplotlib missing)
"""
import os
import re
import shutil
import subprocess
import sys

try:
    import h5py
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.image
    import numpy as np
except ImportError as missing:
    print(f"SKIP: {missing}; install python3-matplotlib python3-h5py (bash env/debian.sh does)")
    sys.exit(77)

plot_py, logdet_bin, fit_bin, out_dir = sys.argv[1:5]
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL:", what)


def run(command, cwd=None):
    # As tests/support/process.hpp: a sanitizer-built program skips LeakSanitizer's exit check,
    # which would report Open MPI's own exit-time allocations (address errors still fail it).
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ((env["ASAN_OPTIONS"] + ":") if env.get("ASAN_OPTIONS") else "") + "detect_leaks=0"
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env)
    if result.returncode != 0:
        print(result.stdout, result.stderr)
    return result


def columns(path, colour, tolerance=60):
    """How many pixel columns hold this colour: a curve across the plot covers hundreds, a
    vertical line or a legend entry a few dozen."""
    rgb = (matplotlib.image.imread(path)[..., :3] * 255).round()
    return int((np.abs(rgb - np.array(colour)).max(axis=-1) <= tolerance).any(axis=0).sum())


C0, C1, C2, C3 = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E), (0x2C, 0xA0, 0x2C), (0xD6, 0x27, 0x28)
shutil.rmtree(out_dir, ignore_errors=True)
os.makedirs(out_dir)

# logdet-histogram: the histogram with the theory's normal curve.
logdet_dir = os.path.join(out_dir, "logdet")
check(run([logdet_bin, "--device", "cpu", "--dim", "30", "--samples", "400", "--bins", "12", "--seed", "5",
           "--output-dir", logdet_dir]).returncode == 0, "logdet-histogram ran")
plots = os.path.join(logdet_dir, "replot")
drawn = run([sys.executable, plot_py, os.path.join(logdet_dir, "metrics.h5"), "-o", plots])
print(drawn.stdout)
check(drawn.returncode == 0, f"plot.py on logdet: {drawn.stderr}")
with h5py.File(os.path.join(logdet_dir, "metrics.h5"), "r") as f:
    mean, variance = float(f["theory"].attrs["mean"]), float(f["theory"].attrs["variance"])
    total = int(f["histogram/counts"][...].sum())
line = next((l for l in drawn.stdout.splitlines() if "histogram." in l and "theory N(" in l), "")
match = re.search(r"(\d+) bins, (\d+) samples; theory N\(([-0-9.e]+), ([-0-9.e]+)\)", line)
check(match is not None, f"histogram line {line!r}")
if match:
    check(int(match[1]) == 12 and int(match[2]) == total == 400, f"bins/samples in {line!r}")
    check(abs(float(match[3]) - mean) < 1e-4 * abs(mean) and abs(float(match[4]) - variance) < 1e-4 * variance,
          f"theory {match[3]}, {match[4]} vs the file's {mean}, {variance}")
histogram = os.path.join(plots, "histogram.png")
check(os.path.isfile(histogram), "histogram.png drawn")
check(os.path.isfile(histogram) and columns(histogram, C3) > 400, "the theory curve (red) spans the plot")
check(not os.path.exists(os.path.join(plots, "histogram_counts.png")), "edges/counts not drawn as lines")

# fit-regression: loss curves with the best epochs, Hubble diagram, residuals.
fit_dir = os.path.join(out_dir, "fit")
os.makedirs(fit_dir)
check(run([fit_bin, "--epochs", "150", "--hidden", "4,16", "--image-every", "0", "--output-dir", fit_dir],
          cwd=fit_dir).returncode == 0, "fit-regression ran")
plots = os.path.join(fit_dir, "replot")
drawn = run([sys.executable, plot_py, os.path.join(fit_dir, "metrics.h5"), "-o", plots])
print(drawn.stdout)
check(drawn.returncode == 0, f"plot.py on fit: {drawn.stderr}")
check({"loss_curves.png", "hubble.png", "residuals.png"} <= set(os.listdir(plots)) if os.path.isdir(plots) else False,
      f"fit figures: {os.listdir(plots) if os.path.isdir(plots) else None}")
check(not any(n.startswith(("split", "grid", "data")) for n in (os.listdir(plots) if os.path.isdir(plots) else [])),
      "the data, grid and split groups are drawn as figures, not as lines against their index")
with h5py.File(os.path.join(fit_dir, "metrics.h5"), "r") as f:
    bests = {name: int(r.attrs["best_epoch"]) + 1 for name, r in f["runs"].items()}
    points = len(f["data/redshift"])
check(set(bests) == {"hidden-4", "hidden-16"}, f"runs {sorted(bests)}")
for name, best in bests.items():
    check(f"{name}: best epoch {best}," in drawn.stdout, f"best epoch of {name} ({best}) reported")
check(f"{points} points, curves network, lcdm, einstein_de_sitter" in drawn.stdout, "Hubble diagram's curves")
if os.path.isdir(plots) and os.path.isfile(os.path.join(plots, "hubble.png")):
    hubble = os.path.join(plots, "hubble.png")
    check(columns(hubble, C1) > 400 and columns(hubble, C2) > 400 and columns(hubble, C3) > 400,
          "network (orange), LambdaCDM (green) and Einstein-de Sitter (red) drawn")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("tools/plot.py re-draws the logdet histogram and the fit figures from metrics.h5")
