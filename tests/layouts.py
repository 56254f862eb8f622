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


def cvat_yolo_1_1(root: Path) -> Path:
    """A CVAT (and Datumaro) "YOLO 1.1" export: obj.data, obj.names, train.txt naming
    ``data/obj_train_data/…``, and ``obj_train_data/`` with each label beside its image."""
    _write(root / "obj.names", "car\nperson\n")
    _write(root / "obj.data", "classes = 2\ntrain = data/train.txt\nnames = data/obj.names\n"
           "backup = backup/\n")
    _write(root / "train.txt", "data/obj_train_data/frame_000000.jpg\n"
           "data/obj_train_data/frame_000001.jpg\n")
    _write(root / "obj_train_data/frame_000000.jpg", jpeg(48, 32, 11))
    _write(root / "obj_train_data/frame_000000.txt", "1 0.5 0.5 0.25 0.5\n0 0.1 0.1 0.1 0.1\n")
    _write(root / "obj_train_data/frame_000001.jpg", jpeg(48, 32, 12))
    _write(root / "obj_train_data/frame_000001.txt", "")
    return root


# -- COCO -------------------------------------------------------------------------------------

def _coco_doc(images: list[tuple[str, int, int]], boxes: list[tuple[int, int, list[float]]],
              categories: list[tuple[int, str]], **extra) -> dict:
    """A COCO document: ``images`` (file_name, width, height) get ids 1…, ``boxes``
    (image index, category id, bbox) annotation ids 1…"""
    return {**extra,
            "images": [{"id": i + 1, "file_name": name, "width": w, "height": h}
                       for i, (name, w, h) in enumerate(images)],
            "categories": [{"id": c, "name": n, "supercategory": "none"} for c, n in categories],
            "annotations": [{"id": n + 1, "image_id": image + 1, "category_id": category,
                             "bbox": bbox, "area": abs(bbox[2] * bbox[3]), "iscrowd": 0,
                             "segmentation": []}
                            for n, (image, category, bbox) in enumerate(boxes)]}


def roboflow_coco(root: Path) -> Path:
    """A Roboflow "COCO JSON" export: ``train/_annotations.coco.json`` with the images beside
    it, the same for ``valid/`` and ``test/``; Roboflow's category 0 is the project's name."""
    info = {"info": {"year": "2024", "version": "3", "description": "Exported from roboflow.com",
                     "contributor": "", "url": "https://public.roboflow.com",
                     "date_created": "2024-01-01T00:00:00+00:00"},
            "licenses": [{"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/",
                          "name": "CC BY 4.0"}]}
    cats = [(0, "hard-hats"), (1, "head"), (2, "helmet")]
    splits = {"train": ([("img1_jpg.rf.3a5b.jpg", 40, 30), ("img2_jpg.rf.9c1d.jpg", 40, 30)],
                        [(0, 2, [4, 4, 10, 8]), (0, 1, [20, 10, 6, 6]), (1, 2, [1, 1, 5, 5])]),
              "valid": ([("img3_jpg.rf.77aa.jpg", 40, 30)], [(0, 1, [2, 2, 8, 8])]),
              "test": ([("img4_jpg.rf.0b0b.jpg", 40, 30)], [])}
    for n, (split, (images, boxes)) in enumerate(splits.items()):
        for name, w, h in images:
            _write(root / split / name, jpeg(w, h, n))
        _write(root / split / "_annotations.coco.json",
               json.dumps(_coco_doc(images, boxes, cats, **info)))
    _write(root / "README.roboflow.txt", "Hard Hats - v3\nexported via roboflow.com\n")
    return root


def cvat_coco(root: Path, at_root: bool = False) -> Path:
    """A CVAT "COCO 1.0" export: ``annotations/instances_default.json`` + ``images/`` (or,
    with ``at_root``, the JSON moved beside ``images/``, as people do)."""
    images = [("frame_000000.jpg", 64, 48), ("frame_000001.jpg", 64, 48)]
    doc = _coco_doc(images, [(0, 1, [10, 10, 20, 15]), (0, 2, [30, 5, 10, 10]),
                             (1, 1, [683.4 / 20, 356.5 / 20, -44.6 / 20, 81.3 / 20])],
                    [(1, "car"), (2, "bus")],
                    licenses=[{"name": "", "id": 0, "url": ""}],
                    info={"contributor": "", "date_created": "", "description": "", "url": "",
                          "version": "", "year": ""})
    for n, (name, w, h) in enumerate(images):
        _write(root / "images" / name, jpeg(w, h, n))
    _write(root / ("instances_default.json" if at_root else
                   "annotations/instances_default.json"), json.dumps(doc))
    return root


def label_studio_coco(root: Path) -> Path:
    """A Label Studio "COCO" export: ``result.json`` whose file names start ``images/``,
    categories from 0, plus ``images/``."""
    images = [("images/1f3c2a9e-plane.jpg", 50, 40), ("images/8d0b11aa-street.jpg", 50, 40)]
    doc = _coco_doc(images, [(0, 0, [5, 5, 30, 20]), (1, 1, [10, 20, 10, 10])],
                    [(0, "Airplane"), (1, "Car")],
                    info={"year": 2024, "version": "1.0", "description": "",
                          "contributor": "Label Studio", "url": "", "date_created": ""})
    for n, (name, w, h) in enumerate(images):
        _write(root / name, jpeg(w, h, n))
    _write(root / "result.json", json.dumps(doc))
    return root


def fiftyone_coco(root: Path) -> Path:
    """A FiftyOne ``COCODetectionDataset`` export: ``data/`` + ``labels.json``."""
    images = [("a.jpg", 30, 20), ("b.jpg", 30, 20), ("c.jpg", 30, 20)]
    doc = _coco_doc(images, [(0, 1, [1, 1, 10, 10]), (2, 2, [5, 5, 5, 5])],
                    [(1, "cat"), (2, "dog")],
                    info={"year": "", "version": "", "description": "Exported from FiftyOne",
                          "contributor": "", "url": "https://voxel51.com/fiftyone",
                          "date_created": "2024-01-01T00:00:00"}, licenses=[])
    for n, (name, w, h) in enumerate(images):
        _write(root / "data" / name, jpeg(w, h, n))
    _write(root / "labels.json", json.dumps(doc))
    return root


def sdk_coco(root: Path) -> Path:
    """The official SDK's example data (image_segmentation/coco): ``annotations/
    instances_val2017_subset.json`` + ``images/`` (no split folder) + its ``dataset.py``."""
    images = [("000000000139.jpg", 40, 30), ("000000000285.jpg", 40, 30)]
    doc = _coco_doc(images, [(0, 1, [1, 2, 10, 10]), (1, 18, [3, 3, 20, 20])],
                    [(1, "person"), (18, "dog")])
    doc["annotations"][0]["segmentation"] = [[1, 2, 11, 2, 11, 12, 1, 12]]
    for n, (name, w, h) in enumerate(images):
        _write(root / "images" / name, jpeg(w, h, n))
    _write(root / "annotations/instances_val2017_subset.json", json.dumps(doc))
    _write(root / "dataset.py", "# the SDK's loader for this folder\n")
    return root


# -- Pascal VOC -------------------------------------------------------------------------------

def voc_xml(filename: str, objects: list[tuple[str, tuple[float, float, float, float]]],
            size: tuple[int, int] = (40, 30), folder: str = "", path: str = "",
            database: str = "Unknown") -> str:
    """A VOC annotation as LabelImg / Roboflow / the SDK write it (tabs, <source>, flags)."""
    body = "".join(
        f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n"
        f"\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n"
        f"\t\t\t<xmin>{b[0]}</xmin>\n\t\t\t<ymin>{b[1]}</ymin>\n\t\t\t<xmax>{b[2]}</xmax>\n"
        f"\t\t\t<ymax>{b[3]}</ymax>\n\t\t</bndbox>\n\t</object>\n" for name, b in objects)
    return (f"<annotation>\n\t<folder>{folder}</folder>\n\t<filename>{filename}</filename>\n"
            + (f"\t<path>{path}</path>\n" if path else "")
            + f"\t<source>\n\t\t<database>{database}</database>\n\t</source>\n"
            f"\t<size>\n\t\t<width>{size[0]}</width>\n\t\t<height>{size[1]}</height>\n"
            f"\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n{body}</annotation>\n")


def sdk_voc(root: Path) -> Path:
    """The official SDK's example data (image_detection/voc): lowercase ``annotations/`` +
    ``images/``."""
    for n, (stem, objects) in enumerate([("2011_000430", [("dog", (17, 3, 38, 28))]),
                                         ("2008_000853", [("person", (1, 1, 20, 29)),
                                                          ("cat", (21, 5, 39, 25))])]):
        _write(root / "images" / f"{stem}.jpg", jpeg(40, 30, n))
        _write(root / "annotations" / f"{stem}.xml",
               voc_xml(f"{stem}.jpg", objects, folder="VOC2012", database="The VOC2011 Database"))
    return root


def roboflow_voc(root: Path) -> Path:
    """A Roboflow "Pascal VOC XML" export: ``train/*.xml`` beside ``train/*.jpg`` (and
    ``valid/``, ``test/``)."""
    files = {"train": [("img1_jpg.rf.3a5b", [("helmet", (4, 4, 14, 12)), ("head", (20, 10, 26, 16))]),
                       ("img2_jpg.rf.9c1d", [("helmet", (1, 1, 6, 6))])],
             "valid": [("img3_jpg.rf.77aa", [("head", (2, 2, 10, 10))])],
             "test": [("img4_jpg.rf.0b0b", [])]}
    for n, (split, items) in enumerate(files.items()):
        for stem, objects in items:
            _write(root / split / f"{stem}.jpg", jpeg(40, 30, n))
            _write(root / split / f"{stem}.xml",
                   voc_xml(f"{stem}.jpg", objects, path=f"{stem}.jpg", database="roboflow.ai"))
    _write(root / "README.roboflow.txt", "Hard Hats - v3\n")
    return root


def labelimg(root: Path) -> Path:
    """A LabelImg folder: each XML beside its image, ``<path>`` an absolute path on the
    annotator's machine, an image not labelled yet, a ``.DS_Store``."""
    for n, (stem, objects) in enumerate([("IMG_0001", [("apple", (5, 5, 20, 20))]),
                                         ("IMG_0002", [("pear", (10, 2, 30, 28)),
                                                       ("apple", (1, 1, 8, 8))])]):
        _write(root / f"{stem}.JPG", jpeg(40, 30, n))
        _write(root / f"{stem}.xml",
               voc_xml(f"{stem}.JPG", objects, folder="fruit",
                       path=f"C:\\Users\\alice\\Pictures\\fruit\\{stem}.JPG"))
    _write(root / "IMG_0003.JPG", jpeg(40, 30, 3))  # not labelled yet
    _write(root / ".DS_Store", b"\x00\x00\x00\x01Bud1")
    return root


def fiftyone_voc(root: Path) -> Path:
    """A FiftyOne ``VOCDetectionDataset`` export: ``data/`` + ``labels/*.xml``, whose
    ``<path>`` is where the image was when exported."""
    for n, stem in enumerate(("a", "b")):
        _write(root / "data" / f"{stem}.jpg", jpeg(40, 30, n))
        _write(root / "labels" / f"{stem}.xml",
               voc_xml(f"{stem}.jpg", [("cat", (2, 2, 12 + n, 12))], folder="data",
                       path=f"/home/user/fiftyone/quickstart/data/{stem}.jpg"))
    return root


def label_studio_voc(root: Path) -> Path:
    """A Label Studio "Pascal VOC XML" export: ``Annotations/`` + ``images/`` (no
    ``JPEGImages``, no ``ImageSets``)."""
    _write(root / "images/1f3c2a9e-plane.jpg", jpeg(40, 30, 1))
    _write(root / "Annotations/1f3c2a9e-plane.xml",
           voc_xml("1f3c2a9e-plane.jpg", [("Airplane", (3, 3, 30, 20))], folder="images",
                   database="MyDatabase"))
    return root
