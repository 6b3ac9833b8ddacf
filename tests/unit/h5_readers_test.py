"""Reads the file written by write_sample_metrics with the tools users have: h5py and
h5dump. Catches what a C-API round trip cannot: a layout or string encoding that our own
reader accepts but h5py or h5dump do not.

Usage: h5_readers_test.py METRICS.h5   (exit 0 pass, 1 fail, 77 skipped)
"""
import os
import shutil
import subprocess
import sys

SKIP = 77


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def check(condition, message):
    if not condition:
        print(f"FAIL: {message}")
        sys.exit(1)


def check_with_h5py(path):
    try:
        import h5py
        import numpy as np
    except ImportError as error:
        skip(f"{sys.executable} cannot import h5py/numpy ({error}); "
             "install python3-h5py or point SLURMLAB_H5PY_PYTHON at a Python that has it")

    with h5py.File(path, "r") as f:
        attrs = f.attrs
        check(attrs["program"] == "write_sample_metrics" and isinstance(attrs["program"], str),
              f"root attribute 'program' is {attrs['program']!r}, expected the str 'write_sample_metrics'")
        check(attrs["note"] == "ünïcødé ✓ 节点", f"UTF-8 attribute 'note' reads {attrs['note']!r}")
        check(attrs["world_size"] == 4 and attrs["world_size"].dtype == np.int64,
              f"attribute 'world_size' is {attrs['world_size']!r}")
        check(attrs["learning_rate"] == 0.001 and attrs["learning_rate"].dtype == np.float64,
              f"attribute 'learning_rate' is {attrs['learning_rate']!r}")
        check(isinstance(attrs["cuda"], np.bool_) and bool(attrs["cuda"]) is True,
              f"attribute 'cuda' should read as numpy.bool_ True, got {attrs['cuda']!r}")

        loss = f["train/loss"]
        check(loss.dtype == np.float64 and loss.shape == (4,), f"train/loss is {loss.dtype} {loss.shape}")
        check(loss.maxshape == (None,) and loss.chunks is not None,
              f"train/loss should be chunked and unlimited, got maxshape {loss.maxshape} chunks {loss.chunks}")
        check(np.array_equal(loss[()], [1.0, 0.5, 0.25, 0.125]), f"train/loss holds {loss[()]}")
        check(loss.attrs["unit"] == "nats", f"train/loss@unit is {loss.attrs['unit']!r}")
        step = f["train/step"]
        check(step.dtype == np.int64 and np.array_equal(step[()], [1, 2, 3, 4]), f"train/step holds {step[()]!r}")
        check(f["train"].attrs["optimizer"] == "sgd", "train@optimizer should be 'sgd'")

        check(np.array_equal(f["ranks/rank"][()], [0, 1, 2, 3]) and f["ranks/rank"].dtype == np.int64,
              f"ranks/rank holds {f['ranks/rank'][()]!r}")
        host = f["ranks/host"]
        string_info = h5py.check_string_dtype(host.dtype)
        check(string_info is not None and string_info.encoding == "utf-8" and string_info.length is None,
              f"ranks/host should be variable-length UTF-8 strings, got {host.dtype} ({string_info})")
        hosts = list(host.asstr()[()])
        check(hosts == ["node001", "node001", "node002", "ünïcødé-节点"] and all(isinstance(h, str) for h in hosts),
              f"ranks/host decodes to {hosts!r}")
        check(np.array_equal(f["ranks/busy_fraction"][()], [0.5, 0.25, 1.0, 0.0]), "ranks/busy_fraction differs")

        histograms = f["histograms"]
        check(histograms.shape == (2, 3) and np.array_equal(histograms[()], [[0, 1, 2], [3, 4, 5]]),
              f"histograms is {histograms.shape}: {histograms[()]!r}")

        names = []
        f.visit(names.append)
        expected = {"train", "train/loss", "train/step", "ranks", "ranks/rank", "ranks/host",
                    "ranks/busy_fraction", "histograms"}
        check(set(names) == expected, f"file holds {sorted(names)}, expected {sorted(expected)}")


def check_with_h5dump(path):
    h5dump = shutil.which("h5dump")
    if h5dump is None:
        skip("h5dump not found (install hdf5-tools); the h5py checks passed")
    header = subprocess.run([h5dump, "-H", path], capture_output=True, text=True)
    check(header.returncode == 0, f"h5dump -H exited {header.returncode}: {header.stderr.strip()}")
    for name in ("loss", "step", "rank", "host", "busy_fraction", "histograms"):
        check(f'DATASET "{name}"' in header.stdout, f"h5dump -H does not list dataset {name}:\n{header.stdout}")
    check('GROUP "train"' in header.stdout and 'GROUP "ranks"' in header.stdout, "h5dump -H misses a group")
    # The strings themselves too: h5dump must be able to decode variable-length UTF-8.
    hosts = subprocess.run([h5dump, "-d", "/ranks/host", path], capture_output=True, text=True)
    check(hosts.returncode == 0 and "node002" in hosts.stdout, f"h5dump -d /ranks/host failed:\n{hosts.stdout}")


def main():
    if len(sys.argv) != 2:
        print("usage: h5_readers_test.py METRICS.h5", file=sys.stderr)
        return 2
    path = sys.argv[1]
    check(os.path.isfile(path), f"{path} does not exist")
    leftovers = [n for n in os.listdir(os.path.dirname(os.path.abspath(path))) if ".tmp." in n]
    check(not leftovers, f"temporary files left beside {path}: {leftovers}")
    check_with_h5py(path)
    check_with_h5dump(path)
    print(f"PASS: h5py and h5dump read {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
