#!/usr/bin/env python3
"""What train-classifier writes to TensorBoard, read back with TensorBoard's own reader (the
EventAccumulator of the PyPI package env/python.sh installs): the scalars the course asks to
look at, the confusion matrix and prediction grid images at every validation, weight and
gradient histograms, the model summary text, the hyperparameters, and the model graph whose
nodes are the network's layers in order with their output shapes.

usage: train_classifier_tensorboard_test.py TRAIN_CLASSIFIER WORKDIR   (exit 77: no tensorboard)
"""
import shutil
import subprocess
import sys

try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except ImportError:
    print("SKIP: tensorboard is not importable by", sys.executable, "(env/python.sh installs it)")
    sys.exit(77)

failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL:", what)


def main(program, work):
    shutil.rmtree(work, ignore_errors=True)
    done = subprocess.run([program, "fit", "--synthetic-count", "400", "--synthetic-test-count", "100", "--epochs", "2",
                           "--histogram-every", "1", "--grid-images", "4", "--test-after-fit", "false",
                           "--output-dir", work], capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout, done.stderr)
        return 1
    ea = EventAccumulator(f"{work}/tensorboard", size_guidance={"scalars": 0, "histograms": 0, "images": 0,
                                                                 "tensors": 0})
    ea.Reload()
    tags = ea.Tags()
    scalars = set(tags["scalars"])
    for tag in ["train/loss_step", "train/loss_epoch", "train/accuracy_epoch", "val/loss_epoch", "val/accuracy_epoch",
                "train/lr", "train/images_per_second", "final/val_accuracy"]:
        check(tag in scalars, f"scalar {tag} (scalars: {sorted(scalars)})")
    check(len(ea.Scalars("val/accuracy_epoch")) == 2, "one validation accuracy per epoch")
    images = set(tags["images"])
    check(images == {"val/confusion_matrix", "val/predictions"}, f"images {sorted(images)}")
    check(len(ea.Images("val/confusion_matrix")) == 2, "a confusion matrix at every validation")
    histograms = set(tags["histograms"])
    for name in ["0.weight", "0.bias", "15.weight"]:
        check(f"weights/{name}" in histograms and f"gradients/{name}" in histograms, f"histograms of {name}")
    check("model/summary" in tags["tensors"], f"model/summary text in {tags['tensors']}")
    check(any(t.startswith("_hparams_") for t in tags["tensors"]), "hyperparameters")

    # The graph: input, then the tutorial CNN's 15 layers in order, shapes on the edges, and
    # parameters that add up to the architecture's count, computed here from its definition.
    check(tags["graph"], "a model graph")
    nodes = list(ea.Graph().node)
    names = [n.name for n in nodes]
    shape = lambda n: [d.size for d in n.attr["_output_shapes"].list.shape[0].dim]
    check(names[0] == "input" and shape(nodes[0]) == [-1, 3, 32, 32], f"the input node first: {nodes[0]}")
    ops = [n.op for n in nodes[1:]]
    check(ops == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"] * 2 + ["Flatten", "Linear", "ReLU", "Dropout",
                                                                    "Linear", "ReLU", "Dropout", "Linear"],
          f"the layers' types in order: {ops}")
    check(all(list(n.input) == [names[i]] for i, n in enumerate(nodes[1:])), "each layer takes the previous one")
    check(shape(nodes[1]) == [-1, 64, 28, 28] and shape(nodes[9]) == [-1, 800] and shape(nodes[-1]) == [-1, 10],
          f"output shapes {[shape(n) for n in nodes]}")
    expected = (3 * 64 * 25 + 64) + 2 * 64 + (64 * 32 * 25 + 32) + 2 * 32 + (800 * 64 + 64) + (64 * 32 + 32) + (32 * 10 + 10)
    total = sum(int(n.attr["parameters"].s) for n in nodes[1:])
    check(total == expected, f"the nodes' parameters add up to {total}, the architecture has {expected}")
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print(f"OK: {len(scalars)} scalar tags, {len(images)} image tags, {len(histograms)} histograms, "
          f"a graph of {len(nodes)} nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
