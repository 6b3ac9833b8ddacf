"""tools/cpu-vs-gpu-report on lab folders made here with known epoch times.

usage: cpu_vs_gpu_report_test.py REPORT_TOOL WORK_DIR     (exit 77: numpy, h5py or matplotlib missing)

The times follow Amdahl's law with a serial fraction of 0.25 (T1 = 8 s), so the table's
speed-ups and efficiencies are known exactly and the fit must give s = 0.25 back; failed,
never-started, skipped and GPU-less tasks must each give one sentence, not a crash.
"""
import csv
import importlib.machinery
import importlib.util
import os
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
    print(f"SKIP: {missing}; install python3-numpy python3-h5py python3-matplotlib (bash env/debian.sh does)")
    sys.exit(77)

tool, work = sys.argv[1:3]
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL:", what)


def load_tool():
    loader = importlib.machinery.SourceFileLoader("cpu_vs_gpu_report", tool)
    spec = importlib.util.spec_from_loader("cpu_vs_gpu_report", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def write_plan(lab, rows):
    os.makedirs(lab, exist_ok=True)
    with open(os.path.join(lab, "plan.tsv"), "w") as f:
        f.write("config\tmodel\tdevice\tcores\tjob\tstatus\treason\n")
        for row in rows:
            f.write("\t".join(str(v) for v in row) + "\n")


def write_task(lab, folder, seconds=None, device="cpu", parameters=101770, task=None, synthetic=True, profile=None):
    path = os.path.join(lab, folder)
    os.makedirs(path, exist_ok=True)
    if task is not None:
        with open(os.path.join(path, "task.txt"), "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in task.items()))
    if seconds is not None:
        with h5py.File(os.path.join(path, "metrics.h5"), "w") as f:
            f["time/epoch"] = np.arange(len(seconds))
            f["time/train_seconds"] = np.asarray(seconds, dtype=float)
            f.attrs["device"] = device
            f.attrs["device_description"] = "cuda:0 (NVIDIA H200)" if device == "cuda" else "cpu"
            f.attrs["parameters"] = np.int64(parameters)
            f.attrs["synthetic_data"] = synthetic
            f.attrs["compute_threads"] = np.int64(1)
            for name, value in (profile or {}).items():
                f[f"profile/{name}"] = np.asarray([value])


def amdahl(n, t1=8.0, s=0.25):
    return t1 * (s + (1 - s) / n)


def epochs(t):
    # A slow warm-up epoch (left out), then three around t whose median is t.
    return [3 * t, 0.99 * t, t, 1.02 * t]


def run(*args):
    result = subprocess.run([sys.executable, tool, *args], capture_output=True, text=True)
    print(result.stdout, result.stderr)
    return result


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
report_tool = load_tool()

# ---- the fit alone: exact data give s back; noisy data nearly ----
cores = [1, 2, 4, 8, 16]
fit = report_tool.amdahl_fit(cores, [amdahl(n) for n in cores])
check(abs(fit["s"] - 0.25) < 1e-12 and abs(fit["t1"] - 8.0) < 1e-12, f"exact fit s {fit['s']} T1 {fit['t1']}")
check(fit["r2"] > 1 - 1e-12 and fit["max_rel"] < 1e-12 and not fit["exact"], f"exact fit quality {fit}")
rng = np.random.default_rng(3)
noisy = [amdahl(n, 20.0, 0.1) * (1 + rng.normal(0, 0.02)) for n in cores]
fit = report_tool.amdahl_fit(cores, noisy)
check(abs(fit["s"] - 0.1) < 0.02, f"noisy fit s {fit['s']}, expected 0.1 +- 0.02")
check(fit["max_rel"] < 0.06 and fit["r2"] > 0.99, f"noisy fit quality {fit}")
check(report_tool.amdahl_fit([1, 2], [10.0, 6.0])["exact"], "a 2-point fit is not marked exact")
check(abs(report_tool.amdahl_fit([1, 2], [10.0, 6.0])["s"] - 0.2) < 1e-12, "2-point fit: 10 s and 6 s give s = 0.2")

# ---- a full lab: mlp on 1-8 cores and a GPU, mlp-extra, tutorial-cnn with failures ----
lab = os.path.join(work, "cpu-vs-gpu-full")
write_plan(lab, [
    ["mlp", "mlp", "cpu", 1, "101_0", "submitted", "-"],
    ["mlp", "mlp", "cpu", 2, "102_0", "submitted", "-"],
    ["mlp", "mlp", "cpu", 4, "103_0", "submitted", "-"],
    ["mlp", "mlp", "cpu", 8, "104_0", "submitted", "-"],
    ["tutorial-cnn", "tutorial-cnn", "cpu", 1, "101_1", "submitted", "-"],
    ["tutorial-cnn", "tutorial-cnn", "cpu", 2, "102_1", "submitted", "-"],
    ["tutorial-cnn", "tutorial-cnn", "cpu", 4, "103_1", "submitted", "-"],
    ["tutorial-cnn", "tutorial-cnn", "cpu", 8, "104_1", "submitted", "-"],
    ["tutorial-cnn", "tutorial-cnn", "cpu", 16, "-", "skipped", "no node of this cluster has 16 CPUs (the largest has 8)"],
    ["mlp-extra", "mlp-extra", "cpu", 1, "101_2", "submitted", "-"],
    ["mlp", "mlp", "gpu", 4, "105_0", "submitted", "-"],
    ["tutorial-cnn", "tutorial-cnn", "gpu", 4, "105_1", "submitted", "-"],
])
for n in (1, 2, 4, 8):
    # 1 core: 3 of 10 profiled seconds waiting for data
    profile = {"data_wait": 3.0, "forward_backward": 5.0, "reduce": 0.0, "optimizer": 2.0} if n == 1 else None
    write_task(lab, f"mlp-cpu{n}", epochs(amdahl(n)), task={"state": "finished", "node": "node1"}, profile=profile)
write_task(lab, "mlp-gpu", epochs(0.5), device="cuda")
write_task(lab, "tutorial-cnn-cpu1", epochs(40.0))
write_task(lab, "tutorial-cnn-cpu2", epochs(25.0))
write_task(lab, "tutorial-cnn-cpu4", task={"state": "failed", "exit": 1, "message": "srun: error: node1: task 0: Exited",
                                           "log": "logs/cpu4-1.out"})
# tutorial-cnn-cpu8: never started (no folder at all)
write_task(lab, "tutorial-cnn-gpu", task={"state": "no-gpu", "message": "nvidia-smi lists no GPU on node2"})
# mlp-extra: two more Dense(128): +2*(128*128+128) parameters (+32%), 10% more time
write_task(lab, "mlp-extra-cpu1", epochs(8.8), parameters=101770 + 33024)

result = run(lab)
check(result.returncode == 0, f"full lab: exit status {result.returncode}")
for name in ("report.txt", "report.csv", "cpu-vs-gpu.png"):
    check(os.path.isfile(os.path.join(lab, name)), f"full lab: {name} not written")
text = open(os.path.join(lab, "report.txt")).read() if os.path.isfile(os.path.join(lab, "report.txt")) else ""
check(text == result.stdout, "report.txt differs from what was printed")
with open(os.path.join(lab, "report.csv")) as f:
    rows = {(r["config"], r["cores"], r["device"].split()[0]): r for r in csv.DictReader(f)}
expected = {  # cores: (speed-up, efficiency) of T(n) = 8 (0.25 + 0.75/n) against 8 s
    "1": ("1.00x", "100%"), "2": ("1.60x", "80%"), "4": ("2.29x", "57%"), "8": ("2.91x", "36%")}
for n, (speedup, efficiency) in expected.items():
    row = rows.get(("mlp", n, "cpu"))
    check(row is not None, f"no mlp row for {n} cores")
    if row:
        exact = 8.0 / amdahl(int(n))
        check(abs(float(row["speedup"]) - exact) < 1e-5 and abs(float(row["efficiency"]) - exact / int(n)) < 1e-5,
              f"mlp {n} cores in report.csv: {row['speedup']} {row['efficiency']}, expected {exact} {exact / int(n)}")
        check(f"{speedup:>8}  {efficiency:>10}" in text, f"mlp {n} cores: the table lacks {speedup} {efficiency}")
        check(abs(float(row["seconds_per_epoch"]) - amdahl(int(n))) < 1e-9,
              f"mlp {n} cores: {row['seconds_per_epoch']} s, expected the median {amdahl(int(n))} (warm-up left out)")
check(rows.get(("mlp", "4", "gpu"), {}).get("speedup") == "16", f"GPU row: {rows.get(('mlp', '4', 'gpu'))}")
check(rows.get(("mlp", "1", "cpu"), {}).get("data_wait") == "0.3", f"data wait of mlp on 1 core: {rows.get(('mlp', '1', 'cpu'))}")
check(rows.get(("mlp", "2", "cpu"), {}).get("data_wait") == "", "data wait without a profile is not empty")
check(rows.get(("tutorial-cnn", "2", "cpu"), {}).get("efficiency") == "0.8", "tutorial-cnn 2 cores: 40/25 = 1.6x, 80%")
check(("tutorial-cnn", "4", "cpu") not in rows and ("tutorial-cnn", "4", "gpu") not in rows, "failed tasks in the table")
for phrase in [
    "8 of 12 planned runs gave a time per epoch",
    "mlp: 2 cores give 1.60x the speed of 1 core: 80% parallel efficiency.",
    "mlp: the Amdahl fit says 25% of an epoch is serial (T1 = 8.00 s), so at most 4.0x on any number of cores; R^2 1.000",
    "mlp: one GPU (cuda:0 (NVIDIA H200)) takes 0.50 s per epoch, 16.0x the speed of 1 core and 5.5x the fastest CPU run (8 cores); no number of "
    "cores reaches it",
    "tutorial-cnn: the Amdahl fit says 25% of an epoch is serial (T1 = 40.0 s), so at most 4.0x on any number of cores; "
    "exact with 2 core counts, so it checks nothing",
    "tutorial-cnn on 4 cores (job 103_1) ended failed with exit status 1 without writing metrics.h5: srun: error: node1: "
    "task 0: Exited; see logs/cpu4-1.out",
    "tutorial-cnn on 8 cores (job 104_1) left no trace",
    "tutorial-cnn on 16 cores was not run: no node of this cluster has 16 CPUs (the largest has 8)",
    "tutorial-cnn on one GPU (job 105_1) found no working GPU: nvidia-smi lists no GPU on node2",
    "Extra layers: mlp-extra (two more Dense(128) + ReLU layers) takes 8.80 s per epoch on 1 core against 8.00 s for mlp "
    "(+10%), for +32% parameters",
    "per-step overhead",
    "here mlp waited 30% of its training for the next batch: the loader sets the pace",
    "SYNTHETIC DATA",
]:
    check(phrase in text, f"full lab report lacks: {phrase}")
check("GPU: absent" not in text, "full lab: a GPU time exists, yet the report says GPU absent")
if os.path.isfile(os.path.join(lab, "cpu-vs-gpu.png")):
    image = matplotlib.image.imread(os.path.join(lab, "cpu-vs-gpu.png"))
    check(image.shape[0] > 200 and image.shape[1] > 400, f"figure shape {image.shape}")

# ---- a lab without GPU, 1 and 2 cores only, real data ----
lab = os.path.join(work, "cpu-vs-gpu-nogpu")
write_plan(lab, [
    ["mlp", "mlp", "cpu", 1, "7_0", "submitted", "-"],
    ["mlp", "mlp", "cpu", 2, "8_0", "submitted", "-"],
    ["tutorial-cnn", "tutorial-cnn", "cpu", 1, "7_1", "submitted", "-"],
    ["tutorial-cnn", "tutorial-cnn", "cpu", 2, "8_1", "submitted", "-"],
    ["mlp", "mlp", "cpu", 4, "-", "skipped", "no node of this cluster has 4 CPUs (the largest has 2)"],
    ["tutorial-cnn", "tutorial-cnn", "cpu", 4, "-", "skipped", "no node of this cluster has 4 CPUs (the largest has 2)"],
    ["mlp", "mlp", "gpu", 2, "-", "skipped", "this cluster offers no GPUs (no node has a gpu GRES in sinfo)"],
])
write_task(lab, "mlp-cpu1", [1.0, 1.0], synthetic=False)
write_task(lab, "mlp-cpu2", [0.55, 0.65], synthetic=False)  # 2 epochs: both used, median 0.6
write_task(lab, "tutorial-cnn-cpu1", [1.0], synthetic=False)
write_task(lab, "tutorial-cnn-cpu2", [1.5], synthetic=False)  # slower on 2 cores: no Amdahl fraction fits
result = run(lab, "--no-plot")
check(result.returncode == 0, f"no-GPU lab: exit status {result.returncode}")
for phrase in ["GPU: absent (mlp on one GPU was not run: this cluster offers no GPUs (no node has a gpu GRES in sinfo)).",
               "mlp: 2 cores give 1.67x the speed of 1 core: 83% parallel efficiency.",
               "mlp and tutorial-cnn on 4 cores were not run: no node of this cluster has 4 CPUs (the largest has 2)",
               "tutorial-cnn: Amdahl's law cannot describe these times: more cores made an epoch slower",
               "tutorial-cnn: the fastest CPU run is on 1 core",
               "4 of 7"]:
    check(phrase in result.stdout, f"no-GPU lab report lacks: {phrase}")
check("SYNTHETIC" not in result.stdout, "real data called synthetic")
check(not os.path.exists(os.path.join(lab, "cpu-vs-gpu.png")), "--no-plot drew a figure")

# ---- nothing came back: exit 1 with the reasons; a GPU task that fell back to the CPU ----
lab = os.path.join(work, "cpu-vs-gpu-empty")
write_plan(lab, [["mlp", "mlp", "cpu", 1, "9_0", "submitted", "-"], ["mlp", "mlp", "gpu", 1, "10_0", "submitted", "-"]])
write_task(lab, "mlp-gpu", [1.0], device="cpu")
os.makedirs(os.path.join(lab, "mlp-cpu1"))
with open(os.path.join(lab, "mlp-cpu1", "metrics.h5"), "w") as f:
    f.write("not hdf5")
result = run(lab)
check(result.returncode == 1, f"empty lab: exit status {result.returncode}, expected 1")
check("0 of 2 planned runs" in result.stdout, "empty lab: count")
check("cannot be read" in result.stdout, "a damaged metrics.h5 is not reported")
check("trained on the CPU, not a GPU" in result.stdout, "a GPU task on the CPU is not reported")

# ---- bad input: one sentence, exit 2 ----
for args, phrase in [([os.path.join(work, "nowhere")], "is not a folder"),
                     ([work], "holds no plan.tsv")]:
    result = run(*args)
    check(result.returncode == 2, f"{args}: exit status {result.returncode}, expected 2")
    check(phrase in result.stderr and result.stderr.count("\n") == 1, f"{args}: stderr {result.stderr!r}")
bad = os.path.join(work, "bad-plan")
os.makedirs(bad)
with open(os.path.join(bad, "plan.tsv"), "w") as f:
    f.write("config\tmodel\tdevice\tcores\tjob\tstatus\treason\nmlp\tmlp\tcpu\tmany\t1\tsubmitted\t-\n")
result = run(bad)
check(result.returncode == 2 and "cores 'many' is not a whole number" in result.stderr, f"bad cores: {result.stderr!r}")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("cpu-vs-gpu-report: all checks passed")
