"""Detecting and reading a YOLO folder: the yolo connector as a ratio to a plain ``os.walk``
that reads the same label files, in the same run.

Generates an Ultralytics layout (``data.yaml``, ``images/{train,val}/`` with tiny image
files, ``labels/{train,val}/*.txt`` with 1-4 boxes each, some negatives without a label
file), then times, best of ``--repeat`` rounds each:

- the baseline: ``os.walk`` over ``images/`` and, per image, reading its label file's
  bytes (what any YOLO reader must at least do);
- ``detect_format`` through the plugin registry (every connector is asked, as
  ``--format auto`` does);
- the yolo connector producing every Record (boxes parsed, normalized and validated,
  media references checked to stay inside the dataset, ids, metadata, fingerprints).

It prints one JSON object: seconds of each and the ratios to the baseline.

    python -m bench.yolo_read [--images 10000] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

# A tiny but real JPEG header is not needed: the reader never opens the images.
_IMAGE = b"\xff\xd8\xff\xe0" + b"\x00" * 60


def generate(root: str | os.PathLike, images: int = 10_000, seed: int = 0) -> Path:
    """Write an Ultralytics detection dataset of ``images`` images under ``root``."""
    rng = random.Random(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\n"
                                    "names:\n  0: person\n  1: car\n  2: dog\n")
    for n in range(images):
        split = "val" if n % 10 == 0 else "train"
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        stem = f"{n:08d}"
        (root / "images" / split / f"{stem}.jpg").write_bytes(_IMAGE)
        if n % 17 == 0:
            continue  # a negative: no label file
        lines = []
        for _ in range(rng.randint(1, 4)):
            w, h = rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.5)
            cx, cy = rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2)
            lines.append(f"{rng.randint(0, 2)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
        (root / "labels" / split / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    return root


def baseline(root: Path) -> int:
    """os.walk over the images, reading each one's label file: how many images."""
    count = 0
    for directory, _, files in os.walk(root / "images"):
        labels = directory.replace(f"{os.sep}images", f"{os.sep}labels", 1)
        for name in files:
            count += 1
            try:
                with open(os.path.join(labels, os.path.splitext(name)[0] + ".txt"), "rb") as f:
                    f.read()
            except FileNotFoundError:
                pass
    return count


def connector(root: Path) -> tuple[int, int]:
    """The yolo connector over the folder: records and regions."""
    from clarifai_connect.records import Record
    from connectors.yolo import YoloReader

    records = regions = 0
    for item in YoloReader(str(root)):
        if isinstance(item, Record):
            records += 1
            regions += len(item.regions)
    return records, regions


def detection(root: Path) -> str:
    from clarifai_connect.plugins import PluginRegistry

    return PluginRegistry().load().detect_format(str(root))


def _best(fn, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def run(images: int = 10_000, repeat: int = 3, keep: str | None = None) -> dict:
    """Generate, measure, and return the figures."""
    with tempfile.TemporaryDirectory(prefix="yolo-bench-") as scratch:
        root = Path(keep or scratch) / "dataset"
        if not (root / "data.yaml").exists():
            generate(root, images)
        base_s, count = _best(lambda: baseline(root), repeat)
        detect_s, name = _best(lambda: detection(root), repeat)
        read_s, (records, regions) = _best(lambda: connector(root), repeat)
    assert name == "yolo" and records == count == images, (name, records, count)
    return {"images": images, "regions": regions, "baseline_walk_read_s": round(base_s, 4),
            "detect_s": round(detect_s, 4), "read_s": round(read_s, 4),
            "detect_ratio": round(detect_s / base_s, 3),
            "read_ratio": round(read_s / base_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="a folder to keep (and reuse) the generated dataset in")
    args = parser.parse_args()
    print(json.dumps(run(args.images, args.repeat, args.keep)))


if __name__ == "__main__":
    main()
