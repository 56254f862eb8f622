"""Datasets laid out as real tools write them, built small in a temporary folder.

Each builder follows the named tool's documentation (folder and file names, file contents)
and returns the dataset's root. Images are small real JPEGs of distinct sizes and colours.
"""

from __future__ import annotations

import io
import json
from pathlib import Path


def jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A small real JPEG."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (seed * 37 % 256, 120, 200 - seed % 100)).save(
        out, format="JPEG")
    return out.getvalue()


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", newline="")
    else:
        path.write_bytes(data)
    return path


# -- YOLO -------------------------------------------------------------------------------------

# (file stem, label file text or None for no label file): boxes, a negative with no label
# file, a negative with an empty one.
YOLO_TRAIN = [("000000000009", "0 0.5 0.4 0.3 0.2\n1 0.25 0.75 0.1 0.2\n"),
              ("000000000025", "1 0.6 0.6 0.4 0.5\n"),
              ("000000000030", None),
              ("000000000034", "")]
YOLO_VAL = [("000000000036", "0 0.3 0.3 0.2 0.2\n0 0.7 0.7 0.2 0.2\n")]
YOLO_NAMES = {0: "person", 1: "bicycle"}


def ultralytics_detect(root: Path) -> Path:
    """coco8-style: ``data.yaml`` (path, train, val, names as a dict), images/<split>/,
    labels/<split>/."""
    _write(root / "data.yaml", "# Ultralytics YOLO dataset\npath: ../datasets/coco8\n"
           "train: images/train\nval: images/val\ntest:\n\nnames:\n  0: person\n"
           "  1: bicycle\n")
    for split, items in (("train", YOLO_TRAIN), ("val", YOLO_VAL)):
        for n, (stem, label) in enumerate(items):
            _write(root / "images" / split / f"{stem}.jpg", jpeg(32 + n, 24, n))
            if label is not None:
                _write(root / "labels" / split / f"{stem}.txt", label)
    _write(root / "labels" / "train.cache", b"\x80\x04cache")  # Ultralytics writes these
    return root


def ultralytics_segment(root: Path) -> Path:
    """A segmentation dataset: polygons ``cls x1 y1 …``, names as a list, no ``path``."""
    _write(root / "data.yaml", "train: images/train\nval: images/train\n"
           "names: ['cat', 'dog']\n")
    _write(root / "images/train/a.jpg", jpeg(40, 30, 1))
    _write(root / "labels/train/a.txt", "0 0.1 0.1 0.5 0.1 0.5 0.6 0.1 0.6\n"
           "1 0.6 0.6 0.9 0.65 0.75 0.95\n")
    _write(root / "images/train/b.jpg", jpeg(30, 40, 2))
    _write(root / "labels/train/b.txt", "1 0.2 0.2 0.8 0.2 0.5 0.9\n")
    return root


def roboflow_yolov8(root: Path) -> Path:
    """A Roboflow YOLOv8 export: ``train/images`` + ``train/labels`` (and valid, test),
    ``data.yaml`` with ``../train/images`` paths, ``nc`` and a names list, two READMEs."""
    _write(root / "data.yaml", "train: ../train/images\nval: ../valid/images\n"
           "test: ../test/images\n\nnc: 2\nnames: ['helmet', 'head']\n\nroboflow:\n"
           "  workspace: demo\n  project: hard-hats\n  version: 3\n"
           "  license: CC BY 4.0\n  url: https://universe.roboflow.com/demo/hard-hats/3\n")
    _write(root / "README.roboflow.txt", "Hard Hats - v3\nThis dataset was exported via "
           "roboflow.com\n")
    _write(root / "README.dataset.txt", "# Hard Hats\n")
    files = {"train": [("img1_jpg.rf.3a5b", "0 0.5 0.5 0.2 0.3\n1 0.2 0.2 0.1 0.1\n"),
                       ("img2_jpg.rf.9c1d", "1 0.4 0.6 0.3 0.3\n")],
             "valid": [("img3_jpg.rf.77aa", "0 0.5 0.5 0.5 0.5\n")],
             "test": [("img4_jpg.rf.0b0b", "")]}
    for n, (split, items) in enumerate(files.items()):
        for stem, label in items:
            _write(root / split / "images" / f"{stem}.jpg", jpeg(30, 30, n))
            _write(root / split / "labels" / f"{stem}.txt", label)
    return root


def cvat_yolov8(root: Path) -> Path:
    """A CVAT "YOLOv8 Detection" export: ``data.yaml`` with ``path: ./`` and
    ``train: train.txt``, the list naming ``images/train/…``, labels/train/."""
    _write(root / "data.yaml", "path: ./\ntrain: train.txt\n\nnames:\n  0: car\n  1: bus\n")
    _write(root / "train.txt", "images/train/frame_000000.jpg\nimages/train/frame_000001.jpg\n")
    _write(root / "images/train/frame_000000.jpg", jpeg(64, 48, 3))
    _write(root / "images/train/frame_000001.jpg", jpeg(64, 48, 4))
    _write(root / "labels/train/frame_000000.txt", "1 0.3 0.8 0.1 0.3\n0 0.7 0.2 0.3 0.1\n")
    _write(root / "labels/train/frame_000001.txt", "0 0.5 0.5 0.25 0.25\n")
    return root


def label_studio_yolo(root: Path) -> Path:
    """A Label Studio "YOLO" export: images/, labels/, classes.txt, notes.json."""
    _write(root / "classes.txt", "Airplane\nCar\n")
    _write(root / "notes.json", json.dumps({"categories": [{"id": 0, "name": "Airplane"},
                                                         {"id": 1, "name": "Car"}],
                                          "info": {"year": 2024, "version": "1.0",
                                                   "contributor": "Label Studio"}}))
    _write(root / "images/1f3c2a9e-plane.jpg", jpeg(50, 40, 5))
    _write(root / "labels/1f3c2a9e-plane.txt", "0 0.5 0.5 0.6 0.4\n")
    _write(root / "images/8d0b11aa-street.jpg", jpeg(50, 40, 6))
    _write(root / "labels/8d0b11aa-street.txt", "1 0.25 0.7 0.2 0.2\n1 0.75 0.7 0.2 0.2\n")
    return root


def clarifai_multifolder(root: Path) -> Path:
    """The official SDK's example data (image_detection/multifolder): ``data/set1/`` …
    with each ``.txt`` beside its ``.jpg`` and no class names (the index is the concept)."""
    _write(root / "data/set1/0c1d3ad769060ea3.jpg", jpeg(40, 40, 7))
    _write(root / "data/set1/0c1d3ad769060ea3.txt",
           "7 0.6117788461538461 0.44711538461538464 0.07451923076923077 0.07692307692307693\n"
           "11 0.7860576923076923 0.41947115384615385 0.057692307692307696 0.0649038461538461")
    _write(root / "data/set2/2c92dcb216b4cbc2.jpg", jpeg(40, 40, 8))
    _write(root / "data/set2/2c92dcb216b4cbc2.txt", "7 0.5 0.5 0.2 0.2\n")
    _write(root / "dataset.py", "# the SDK's loader for this folder\n")
    return root


def darknet_yolo(root: Path) -> Path:
    """FiftyOne's "YOLOv4" layout (Darknet): obj.names, obj.data, images.txt, data/ with
    each label beside its image."""
    _write(root / "obj.names", "cat\ndog\n")
    _write(root / "obj.data", "classes = 2\ntrain = data/images.txt\nnames = data/obj.names\n"
           "backup = backup/\n")
    _write(root / "images.txt", "data/a.jpg\ndata/b.jpg\n")
    _write(root / "data/a.jpg", jpeg(20, 20, 9))
    _write(root / "data/a.txt", "1 0.5 0.5 0.5 0.5\n")
    _write(root / "data/b.jpg", jpeg(20, 20, 10))
    _write(root / "data/b.txt", "0 0.5 0.5 0.4 0.4\r\n1 0.2 0.2 0.2 0.2\r\n")
    _write(root / "data/.DS_Store", b"\x00\x00\x00\x01Bud1")
    return root
