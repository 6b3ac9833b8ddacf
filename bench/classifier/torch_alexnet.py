#!/usr/bin/env python3
"""The AlexNet practical in PyTorch, as its users write it: one training epoch at a reduced image
count on a CIFAR-10 set in the binary format (data_batch_1..5.bin), a seeded 45000/5000 split,
torchvision's PIL transforms (Resize 70, RandomCrop 64, RandomHorizontalFlip, ToTensor,
Normalize), a DataLoader with WORKERS worker processes, torchvision's AlexNet (10 classes),
Adam 1e-4, batch 64, cross entropy.

  lightning  a LightningModule and lightning.Trainer (1 device, no logger, no checkpoint,
             no progress bar, no sanity validation): what the practical runs.
  plain      the same model, data and optimizer in a hand-written loop.

usage: torch_alexnet.py MODE DIR THREADS WORKERS BATCHES [DEVICE] [PRECISION]
DEVICE: cpu (default) or cuda (one GPU; pinned batches copied asynchronously, as users write it,
and the clock read after the GPU finished the first and the last step).
PRECISION: default (PyTorch's own: fp32 on the CPU; on a GPU TF32 convolutions and fp32 matrix
products), fp32 (on a GPU: no TF32 anywhere, as train-classifier --precision fp32), tf32 (TF32
convolutions and matrix products, as --precision tf32) or bf16 (autocast to bfloat16: the plain
loop under torch.autocast, Lightning with precision="bf16-mixed", as --precision bf16).
Prints one JSON line: framework, mode, threads, workers, batches, images_per_s (training images
of the epoch / seconds from the epoch's start to its last batch's end), first_step_s (seconds
from the process's start to the end of its first training step). Peak memory is measured from
outside (run.sh: /usr/bin/time).
"""
import json
import os
import pathlib
import sys
import time


def process_age():
    """Seconds since this process started (as slurmlab's process_age_seconds)."""
    stat = pathlib.Path("/proc/self/stat").read_text()
    start_ticks = int(stat[stat.rfind(")") + 2:].split()[19])
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")


mode, directory, threads, workers, batches = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
device_name = sys.argv[6] if len(sys.argv) > 6 else "cpu"
if device_name not in ("cpu", "cuda"):
    sys.exit(f"torch_alexnet.py: DEVICE '{device_name}' is not cpu or cuda")
precision = sys.argv[7] if len(sys.argv) > 7 else "default"
if precision not in ("default", "fp32", "tf32", "bf16"):
    sys.exit(f"torch_alexnet.py: PRECISION '{precision}' is not default, fp32, tf32 or bf16")

import numpy as np  # noqa: E402  (imports after the clock's reference point, as users' scripts do)
import torch  # noqa: E402
import torchvision  # noqa: E402
import torchvision.transforms as T  # noqa: E402
from PIL import Image  # noqa: E402

torch.set_num_threads(threads)
device = torch.device(device_name)
if device_name == "cuda" and not torch.cuda.is_available():
    sys.exit("torch_alexnet.py: DEVICE cuda, but this PyTorch sees no GPU")
if device_name == "cuda" and precision in ("fp32", "tf32"):
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
BATCH = 64


class CifarBinary(torch.utils.data.Dataset):
    """CIFAR-10's binary batches held as datasets.CIFAR10 holds them (HWC uint8, PIL per item)."""

    def __init__(self, directory, transform):
        records = np.concatenate([np.fromfile(pathlib.Path(directory) / f"data_batch_{b}.bin", dtype=np.uint8)
                                  .reshape(-1, 3073) for b in range(1, 6)])
        self.labels = records[:, 0].astype(np.int64)
        self.hwc = np.ascontiguousarray(records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.hwc[i])), int(self.labels[i])


transform = T.Compose([T.Resize((70, 70)), T.RandomCrop(64), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
full = CifarBinary(directory, transform)
train, _ = torch.utils.data.random_split(full, [45000, len(full) - 45000], generator=torch.Generator().manual_seed(42))
loader = torch.utils.data.DataLoader(train, batch_size=BATCH, shuffle=True, num_workers=workers, drop_last=True,
                                     persistent_workers=False, pin_memory=device_name == "cuda")
model = torchvision.models.alexnet(num_classes=10)
timing = {"epoch_start": None, "last_end": None, "first_step": None, "steps": 0}


def batch_done():
    timing["steps"] += 1
    if device_name == "cuda" and (timing["first_step"] is None or timing["steps"] == batches):
        torch.cuda.synchronize()  # the step's kernels finished, not only queued
    timing["last_end"] = time.perf_counter()
    if timing["first_step"] is None:
        timing["first_step"] = process_age()


if mode == "plain":
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    timing["epoch_start"] = time.perf_counter()
    for step, (x, y) in enumerate(loader):
        if step == batches:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad()
        with torch.autocast(device_name, dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(x)
        loss = loss_fn(out.float(), y)
        loss.backward()
        optimizer.step()
        batch_done()
elif mode == "lightning":
    import lightning as L  # noqa: E402

    class Classifier(L.LightningModule):
        def __init__(self, network):
            super().__init__()
            self.network = network
            self.loss_fn = torch.nn.CrossEntropyLoss()

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = self.loss_fn(self.network(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-4)

    class Timer(L.Callback):
        def on_train_epoch_start(self, trainer, module):
            timing["epoch_start"] = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            batch_done()

    trainer = L.Trainer(accelerator="gpu" if device_name == "cuda" else "cpu", devices=1, max_epochs=1, limit_train_batches=batches, limit_val_batches=0,
                        precision="bf16-mixed" if precision == "bf16" else "32-true",
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=[Timer()])
    trainer.fit(Classifier(model), train_dataloaders=loader)
else:
    sys.exit(f"torch_alexnet.py: unknown mode '{mode}'; give lightning or plain")

seconds = timing["last_end"] - timing["epoch_start"]
print(json.dumps({"framework": "PyTorch " + torch.__version__ + (" + Lightning " + __import__("lightning").__version__
                                                                 if mode == "lightning" else ""),
                  "mode": mode, "precision": precision, "threads": threads, "workers": workers, "batches": timing["steps"],
                  "images_per_s": timing["steps"] * BATCH / seconds, "first_step_s": timing["first_step"]}))
