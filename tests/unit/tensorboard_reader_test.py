"""Reads the event files written by write_sample_events with TensorBoard's own reader
(EventAccumulator, EventMultiplexer, the hparams plugin's parsers) and checks every tag,
step and value; then cuts the file mid-record, as a killed job leaves it, and checks that
everything before the cut still reads.

usage: tensorboard_reader_test.py LOG_DIR FIGURE_PNG
"""
import math
import os
import re
import shutil
import struct
import sys
import tempfile
import zlib

from tensorboard.backend.event_processing import event_file_loader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.util import tensor_util

failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL:", what)


def decode_png(data):
    """A small independent PNG decoder (8-bit, colour types 0/2/4/6, no interlace) ->
    (width, height, channels, rows as bytes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat, header = 8, b"", None
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        at += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0, "unsupported PNG"
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous, at = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[at], bytearray(raw[at + 1:at + 1 + stride])
        at += 1 + stride
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, channels, rows


def event_file(directory):
    names = [n for n in os.listdir(directory) if n.startswith("events.out.tfevents.")]
    check(len(names) == 1, f"one event file in {directory}, found {names}")
    check(re.fullmatch(r"events\.out\.tfevents\.\d{10}\.[^/]+\.\d+\.\d+", names[0]) is not None,
          f"file name {names[0]} has the form events.out.tfevents.<10-digit time>.<host>.<pid>.<n>")
    return os.path.join(directory, names[0])


def accumulate(directory):
    ea = EventAccumulator(directory, size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea


def main(log_dir, figure_png):
    path = event_file(log_dir)
    events = list(event_file_loader.EventFileLoader(path).Load())
    check(events[0].file_version == "brain.Event:2", f"first record file_version, got {events[0].file_version!r}")

    ea = accumulate(log_dir)
    tags = ea.Tags()
    check(sorted(tags["scalars"]) == ["train/accuracy", "train/loss"], f"scalar tags {tags['scalars']}")
    check(tags["histograms"] == ["weights/layer1"], f"histogram tags {tags['histograms']}")
    check(tags["images"] == ["figures/loss"], f"image tags {tags['images']}")
    check(sorted(tags["tensors"]) == sorted(["notes", "_hparams_/session_start_info", "_hparams_/session_end_info"]),
          f"tensor tags {tags['tensors']}")

    # Scalars: float32 values at steps 0..9.
    f32 = lambda v: struct.unpack("f", struct.pack("f", v))[0]
    loss = ea.Scalars("train/loss")
    check([e.step for e in loss] == list(range(10)), f"loss steps {[e.step for e in loss]}")
    check(all(e.value == f32(1.0 / (e.step + 1)) for e in loss), f"loss values {[e.value for e in loss]}")
    accuracy = ea.Scalars("train/accuracy")
    check(all(e.value == f32(e.step / 10.0) for e in accuracy) and len(accuracy) == 10,
          f"accuracy values {[e.value for e in accuracy]}")
    check(all(abs(e.wall_time - events[0].wall_time) < 60 for e in loss), "wall times near the file's start")

    # Histogram of 0.00 .. 9.99 in 20 equal buckets (the NaN left out).
    (h_event,) = ea.Histograms("weights/layer1")
    h = h_event.histogram_value
    values = [i * 0.01 for i in range(1000)]
    check(h_event.step == 5, f"histogram step {h_event.step}")
    check(h.min == 0.0 and h.max == values[-1], f"histogram min/max {h.min} {h.max}")
    check(h.num == 1000, f"histogram num {h.num}")
    check(math.isclose(h.sum, sum(values), rel_tol=1e-12), f"histogram sum {h.sum}")
    check(math.isclose(h.sum_squares, sum(v * v for v in values), rel_tol=1e-12), f"sum_squares {h.sum_squares}")
    width = values[-1] / 20
    expected_counts = [0] * 20
    for v in values:
        expected_counts[min(int(v / width), 19)] += 1
    check(list(h.bucket) == expected_counts, f"buckets {list(h.bucket)} expected {expected_counts}")
    check(len(h.bucket_limit) == 20 and math.isclose(h.bucket_limit[0], width) and h.bucket_limit[-1] == h.max,
          f"bucket limits {list(h.bucket_limit)}")

    # Image: decoded back to the same pixels as the PNG the program wrote beside the log.
    (image,) = ea.Images("figures/loss")
    with open(figure_png, "rb") as f:
        reference = f.read()
    check(image.step == 3 and image.width == 320 and image.height == 240,
          f"image step/size {image.step} {image.width}x{image.height}")
    ours = decode_png(image.encoded_image_string)
    theirs = decode_png(reference)
    check(ours[:3] == (320, 240, 3), f"decoded image geometry {ours[:3]}")
    check(ours == theirs, "image pixels equal the reference PNG's")
    check(len(set(ours[3])) > 10, "the image is not blank")

    # Text: the text plugin's scalar string tensor.
    check("notes" in ea.PluginTagToContent("text"), "notes is a text-plugin tag")
    (note,) = ea.Tensors("notes")
    text = tensor_util.make_ndarray(note.tensor_proto).item().decode()
    check(text.startswith("**slurmlab** run") and "| 0 | node1 |" in text, f"text {text!r}")

    # HParams: parsed with the plugin's own metadata parsers.
    content = ea.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    start = hparams_metadata.parse_session_start_info_plugin_data(content["_hparams_/session_start_info"])
    check(start.hparams["learning_rate"].number_value == 0.01, f"learning_rate {start.hparams['learning_rate']}")
    check(start.hparams["batch_size"].number_value == 64, "batch_size")
    check(start.hparams["optimizer"].string_value == "adam", "optimizer")
    check(start.hparams["augment"].bool_value is True, "augment")
    check(start.group_name == "lr0.01-adam", f"group_name {start.group_name!r}")
    check(start.start_time_secs > 1.6e9, f"start_time_secs {start.start_time_secs}")
    end = hparams_metadata.parse_session_end_info_plugin_data(content["_hparams_/session_end_info"])
    check(end.status == api_pb2.STATUS_SUCCESS, f"session status {end.status}")

    # Graph: the GraphDef TensorBoard's Graphs tab draws, nodes, ops, edges and shapes.
    check(tags["graph"], "the run has a graph")
    graph = ea.Graph()
    nodes = {n.name: n for n in graph.node}
    check(list(nodes) == ["input", "features/0_Conv2d", "features/1_ReLU"], f"graph nodes {list(nodes)}")
    check(nodes["features/0_Conv2d"].op == "Conv2d" and list(nodes["features/0_Conv2d"].input) == ["input"],
          f"conv node {nodes['features/0_Conv2d']}")
    check(list(nodes["features/1_ReLU"].input) == ["features/0_Conv2d"], "relu's input")
    check(nodes["features/0_Conv2d"].attr["parameters"].s == b"4864", "conv's parameters attribute")
    shape = nodes["features/1_ReLU"].attr["_output_shapes"].list.shape[0]
    check([d.size for d in shape.dim] == [-1, 64, 28, 28], f"relu's output shape {shape}")

    # Per-rank subdirectories are separate runs.
    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(log_dir)
    multiplexer.Reload()
    runs = multiplexer.Runs()
    check(sorted(runs) == [".", "rank-000", "rank-001"], f"runs {sorted(runs)}")
    for rank in (0, 1):
        steps = multiplexer.Scalars(f"rank-{rank:03d}", "rank/step_time")
        check([round(e.value, 6) for e in steps] == [round(f32(0.1 * (rank + 1) + 0.01 * s), 6) for s in range(3)],
              f"rank {rank} step times {[e.value for e in steps]}")

    # A killed job: the last record cut in the middle of its payload.
    with open(path, "rb") as f:
        data = f.read()
    offsets, at = [], 0
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at:at + 8])
        offsets.append((at, length))
        at += 16 + length
    check(at == len(data), "records tile the file exactly")
    last_at, last_length = offsets[-1]
    with tempfile.TemporaryDirectory() as cut_dir:
        cut_path = os.path.join(cut_dir, os.path.basename(path))
        with open(cut_path, "wb") as f:
            f.write(data[:last_at + 12 + last_length // 2])
        # The legacy loader: one event per record (the current one adds a migrated
        # "__run_graph__" summary after a graph_def event).
        cut = list(event_file_loader.LegacyEventFileLoader(cut_path).Load())
        check(len(cut) == len(offsets) - 1, f"{len(cut)} events before the cut, expected {len(offsets) - 1}")
        ea_cut = accumulate(cut_dir)
        check(len(ea_cut.Scalars("train/loss")) == 10, "all scalars before the cut are read")
        check(len(ea_cut.Images("figures/loss")) == 1, "the image before the cut is read")
        # The record that was cut (the session end) is simply absent.
        check("_hparams_/session_end_info" not in ea_cut.Tags()["tensors"], "the cut record is not read")

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("tensorboard reader: every tag, step and value as written; truncated file reads up to the cut")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
