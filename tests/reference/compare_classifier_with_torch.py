#!/usr/bin/env python3
"""train-classifier's whole training step against PyTorch: the program reads a CIFAR-10 binary
set, converts it to floats, builds the model, and trains it with its optimizer, loss and
trainer; PyTorch (Debian's python3-torch) does the same from the same initial weights, which
the program exports itself (fit --max-steps 0, then export). Full-batch training (the batch is
the whole set), so the sampler's order cannot matter beyond float rounding; augmentation and
dropout are off, so nothing random remains. The per-epoch train_loss series in metrics.h5
(the loss before each step) and the exported final weights must match PyTorch's.

Cases: the Lightning tutorial CNN with Adam and label smoothing 0.1 (BatchNorm in training
mode), and the timing lab's MLP with SGD, Nesterov-free momentum 0.9 and weight decay (L2).

usage: compare_classifier_with_torch.py TRAIN_CLASSIFIER WORKDIR    (exit 77: no torch or h5py)
Tolerances: losses 2e-5 relative for SGD, 5e-4 for Adam (Adam divides by sqrt(v): entries with
tiny gradients amplify round-off, as in compare_with_torch.py); weights 1e-3 of the largest
weight of each tensor (except the CNN's convolution biases before BatchNorm: see CASES).
"""
import pathlib
import shutil
import subprocess
import sys

import numpy as np

try:
    import h5py
    import torch
    from torch import nn
except ImportError as missing:
    print("SKIP:", missing, "(Debian: apt install python3-torch python3-h5py)")
    sys.exit(77)

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from compare_with_torch import build, read_safetensors  # noqa: E402

STEPS = 5
CASES = {
    "cnn": dict(model="tutorial-cnn", args=["--optimizer", "adam", "--lr", "1e-3", "--label-smoothing", "0.1"],
                optimizer=lambda p: torch.optim.Adam(p, lr=1e-3), smoothing=0.1, loss_tol=5e-4,
                # A convolution's bias before BatchNorm gets a gradient of round-off only (the
                # normalization removes it), and Adam turns round-off of either sign into steps
                # of up to lr: those entries (and the running means they shift) are held to
                # Adam's bound, 2 x lr per step, not to the others' relative tolerance.
                noise_driven={"0.bias", "4.bias", "1.running_mean", "5.running_mean"}, adam_bound=2 * STEPS * 1e-3,
                # Adam moves every element by about lr per step whatever its gradient's size, and
                # where a gradient changes sign its step is steered by round-off-sized differences:
                # an element is held to a tenth of one step (1e-4), or 1e-3 of its tensor's largest
                # entry if that is looser (weights of size 0.1 get 1e-4 either way). A BatchNorm
                # bias starts at 0 and ends near 5 x lr, so the relative bound alone was 0.5% of a
                # step there; one of its 64 channels of the seed-3 CNN ends 1% of a step off.
                step_tol=0.1 * 1e-3),
    "mlp": dict(model="mlp", args=["--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--weight-decay", "5e-4"],
                optimizer=lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=5e-4), smoothing=0.0,
                loss_tol=2e-5),
}


def write_cifar(folder, rng):
    """Five training batches of 8 records (40 images) and a test batch: 1 label byte + 3072 CHW."""
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = [], []
    for name in [f"data_batch_{b}.bin" for b in range(1, 6)] + ["test_batch.bin"]:
        records = np.zeros((8, 3073), np.uint8)
        records[:, 0] = rng.integers(0, 10, 8)
        records[:, 1:] = rng.integers(0, 256, (8, 3072))
        records.tofile(folder / name)
        if name != "test_batch.bin":
            labels.append(records[:, 0].astype(np.int64))
            images.append(records[:, 1:].reshape(-1, 3, 32, 32))
    return np.concatenate(images), np.concatenate(labels)


def run(program, *args):
    done = subprocess.run([program, *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"FAIL: {program} {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")


def torch_model(name):
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 128), nn.ReLU(), nn.Dropout(0.0), nn.Linear(128, 10))
    return build("cnn")


def load(net, path):
    state = {}
    for name, value in read_safetensors(path).items():
        t = torch.from_numpy(np.array(value))
        state[name] = t.to(torch.int64) if name.endswith("num_batches_tracked") else t
    net.load_state_dict(state, strict=True)


def main():
    program, work = sys.argv[1], pathlib.Path(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    images, labels = write_cifar(work / "data", np.random.default_rng(0))
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    y = torch.from_numpy(labels)
    torch.set_num_threads(1)
    failures = []
    for case, spec in CASES.items():
        common = ["--data", f"cifar10:{work / 'data'}", "--val-size", "0", "--model", spec["model"], "--dropout", "0",
                  "--normalize", "none", "--resize", "none", "--crop", "none", "--batch-size", str(len(labels)),
                  "--seed", "3", "--tensorboard", "false", "--grid-images", "0", "--test-after-fit", "false",
                  "--save-top-k", "0", "--threads", "1", *spec["args"]]
        init, fit = work / case / "init", work / case / "fit"
        run(program, "fit", *common, "--epochs", "1", "--max-steps", "0", "--output-dir", str(init))
        run(program, "export", "--ckpt", "last", "--out", str(init / "exported"), "--output-dir", str(init))
        run(program, "fit", *common, "--epochs", str(STEPS), "--output-dir", str(fit))
        run(program, "export", "--ckpt", "last", "--out", str(fit / "exported"), "--output-dir", str(fit))
        with h5py.File(fit / "metrics.h5", "r") as f:
            ours = np.array(f["train_loss"])

        net = torch_model(case)
        load(net, init / "exported" / "model.safetensors")
        net.train()
        optimizer = spec["optimizer"](net.parameters())
        criterion = nn.CrossEntropyLoss(label_smoothing=spec["smoothing"])
        theirs = []
        for _ in range(STEPS):
            optimizer.zero_grad()
            loss = criterion(net(x), y)
            loss.backward()
            optimizer.step()
            theirs.append(loss.item())
        theirs = np.array(theirs)
        if ours.shape != theirs.shape:
            failures.append(f"{case}: {ours.shape[0]} train_loss values in metrics.h5, expected {STEPS}")
            continue
        loss_error = np.max(np.abs(ours - theirs) / np.abs(theirs))
        print(f"{case}: losses ours {np.round(ours, 6).tolist()}\n{case}: losses torch {np.round(theirs, 6).tolist()}"
              f"\n{case}: largest relative loss difference {loss_error:.2e} (tolerance {spec['loss_tol']:.0e})")
        if not loss_error <= spec["loss_tol"]:
            failures.append(f"{case}: losses differ by {loss_error:.2e} relative")
        if theirs[-1] >= theirs[0]:
            failures.append(f"{case}: the loss did not go down in {STEPS} steps, the case tests nothing")
        final = read_safetensors(fit / "exported" / "model.safetensors")
        for name, value in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                if int(np.array(final[name]).reshape(-1)[0]) != int(value):
                    failures.append(f"{case}: {name} is {final[name]}, PyTorch counts {int(value)}")
                continue
            expected = value.detach().numpy()
            if name in spec.get("noise_driven", ()):
                error = np.max(np.abs(np.array(final[name]) - expected))
                if not error <= spec["adam_bound"]:
                    failures.append(f"{case}: final {name} differs by {error:.2e}, beyond Adam's {spec['adam_bound']:.0e}")
                continue
            scale = max(np.max(np.abs(expected)), 1e-12)
            error = np.max(np.abs(np.array(final[name]) - expected))
            if not error <= max(1e-3 * scale, spec.get("step_tol", 0.0)):
                failures.append(f"{case}: final {name} differs by {error / scale:.2e} of its largest entry"
                                f" ({error:.2e}, beyond {max(1e-3 * scale, spec.get('step_tol', 0.0)):.1e})")
    if failures:
        print("FAIL:\n  " + "\n  ".join(failures))
        return 1
    print(f"OK: train-classifier's {STEPS} training steps match PyTorch {torch.__version__} for the CNN (Adam, "
          "label smoothing) and the MLP (SGD, momentum, weight decay)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
