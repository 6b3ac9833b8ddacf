#!/usr/bin/env python3
"""Checks slurmlab::data's transforms against torchvision on the images transforms_case wrote.

For every image: uint8 CHW -> float ÷255 -> resize(antialias=False, bilinear) -> pad (zeros or reflect)
-> crop at the corner slurmlab chose (or CenterCrop's corner, recomputed here) -> hflip when
slurmlab flipped -> normalize, all with torchvision.transforms.functional on tensors, then the
largest difference from slurmlab's output. The random choices themselves are slurmlab's (its
generator is its own); the script checks they are valid placements and that the centre crop
is where torchvision puts it.

usage: compare_transforms_with_torchvision.py DIR      exit 77 (skip) without torchvision
"""
import json
import pathlib
import sys

try:
    import numpy as np
    import torch
    import torchvision
    import torchvision.transforms.functional as F
    from torchvision.transforms import InterpolationMode
except ImportError as error:  # pragma: no cover
    print(f"SKIP: {error}; install python3-torchvision (env/debian.sh)")
    sys.exit(77)

TOLERANCE = 2e-5


def main(directory):
    directory = pathlib.Path(directory)
    cases = [json.loads(line) for line in (directory / "manifest.jsonl").read_text().splitlines()]
    if not cases:
        sys.exit(f"{directory / 'manifest.jsonl'} lists no image: nothing was compared")
    worst = 0.0
    failures = 0
    for case in cases:
        c, h, w = case["shape"]
        pixels = np.fromfile(directory / (case["stem"] + ".input"), dtype=np.uint8).reshape(c, h, w)
        ours = torch.from_numpy(np.fromfile(directory / (case["stem"] + ".output"), dtype=np.float32))
        x = F.convert_image_dtype(torch.from_numpy(pixels.copy()), torch.float32)
        if case["resize"]:
            x = F.resize(x, case["resize"], interpolation=InterpolationMode.BILINEAR, antialias=False)
        if case["crop"]:
            ch, cw = case["crop"]
            pad = case["padding"]
            if pad:
                x = F.pad(x, [pad, pad, pad, pad], fill=0, padding_mode=case.get("padding_mode", "constant"))
            top, left = case["top"], case["left"]
            if case["random_crop"]:
                assert 0 <= top <= x.shape[1] - ch and 0 <= left <= x.shape[2] - cw, case
                x = F.crop(x, top, left, ch, cw)
            else:
                expected = F.center_crop(x, [ch, cw])
                x = F.crop(x, top, left, ch, cw)
                if not torch.equal(x, expected):
                    print(f"{case['stem']}: centre crop at ({top}, {left}) is not torchvision's CenterCrop")
                    failures += 1
        if case["flip"]:
            x = F.hflip(x)
        if case["mean"]:
            x = F.normalize(x, case["mean"], case["std"])
        x = x.reshape(-1)
        if x.shape != ours.shape:
            print(f"{case['stem']}: {ours.numel()} values, torchvision made {x.numel()}")
            failures += 1
            continue
        difference = float((x - ours).abs().max())
        worst = max(worst, difference)
        if difference > TOLERANCE:
            print(f"{case['stem']}: largest difference {difference:.3g} > {TOLERANCE}")
            failures += 1
    print(f"{len(cases)} images against torch {torch.__version__} / torchvision {torchvision.__version__}: "
          f"largest difference {worst:.3g} (tolerance {TOLERANCE}), {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
