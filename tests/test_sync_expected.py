"""One sync per connector checked against what its fixture files say, worked out here from
their numbers (ids by the documented rules, boxes divided by the image size, masks decoded
pixel by pixel), never by asking a connector what it read."""

from __future__ import annotations

import csv
import hashlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
from clarifai_grpc.grpc.api import service_pb2

import clarifai_connect

from .sync_support import (
    app_content,
    app_masks,
    app_media,
    class_folders,
    documented_id,
    mask_pixels,
    png,
)


def _sync(server, app, source, tmp_path, **kwargs):
    report = clarifai_connect.sync(str(source), app.target, base_url=server.base_url,
                                   pat=server.keys[0], state=tmp_path / "state.sqlite",
                                   **kwargs)
    assert report.failed == 0 and report.read == report.created, report.summary()
    return report


def _box(left: float, top: float, right: float, bottom: float, width: float, height: float,
         *concepts: str) -> tuple:
    """A box in pixels as app_content shows it: (top_row, left_col, bottom_row, right_col)."""
    return ("box", round(top / height, 4), round(left / width, 4), round(bottom / height, 4),
            round(right / width, 4), tuple(sorted(concepts)))


def _rle_pixels(counts: list[int], height: int, width: int) -> frozenset[tuple[int, int]]:
    """The (x, y) set by an uncompressed COCO RLE: runs alternate 0/1, column by column."""
    pixels, position = set(), 0
    for run, count in enumerate(counts):
        if run % 2:
            pixels.update(((position + k) // height, (position + k) % height)
                          for k in range(count))
        position += count
    return frozenset(pixels)


def test_compat_kaggle_csv(compat_dir, clarifai_server, clarifai_app, clarifai_raw, tmp_path):
    """The compat CSV names its own columns and keeps its images in images/: every row
    lands, with its id, label and bytes."""
    src = compat_dir / "datumaro/kaggle_dataset/image_csv"
    with open(src / "ann.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    _sync(clarifai_server, clarifai_app, src / "ann.csv", tmp_path, options={
        "columns": {"input": "image_name", "concepts": "label_name"},
        "media_root": str(src / "images")})
    # Each row's id is its file name (already a valid id), its one label its concept.
    assert app_content(clarifai_raw, clarifai_app) == {
        row["image_name"]: {"concepts": [row["label_name"]], "regions": [], "datasets": []}
        for row in rows}
    assert len(rows) == 5
    assert app_media(clarifai_raw, clarifai_app, clarifai_server.keys[0]) == {
        row["image_name"]: (src / "images" / row["image_name"]).read_bytes() for row in rows}


def test_parquet_rows(clarifai_server, clarifai_app, clarifai_raw, tmp_path):
    pq.write_table(pa.table({"inputid": [f"p{i}" for i in range(150)],
                             "input": [png(i) for i in range(150)],
                             "concepts": ["even" if i % 2 == 0 else "odd" for i in range(150)],
                             "split": ["a" if i < 100 else "b" for i in range(150)]}),
                   tmp_path / "t.parquet", row_group_size=40)
    report = _sync(clarifai_server, clarifai_app, tmp_path / "t.parquet", tmp_path,
                   options={"columns": {"dataset": "split"}})
    assert report.created == 150
    assert app_content(clarifai_raw, clarifai_app) == {
        f"p{i}": {"concepts": ["even" if i % 2 == 0 else "odd"], "regions": [],
                  "datasets": ["a" if i < 100 else "b"]} for i in range(150)}
    media = app_media(clarifai_raw, clarifai_app, clarifai_server.keys[0])
    assert all(media[f"p{i}"] == png(i) for i in range(150))


def test_folder_of_class_folders(clarifai_server, clarifai_app, clarifai_raw, tmp_path):
    root = class_folders(tmp_path / "pets", {"cat": 3, "dog": 2})  # img00000 … img00004
    _sync(clarifai_server, clarifai_app, root, tmp_path)
    # An id is the file's relative path by the documented rule: '/' is not valid in ids.
    files = {"cat/img00000.png": 0, "cat/img00001.png": 1, "cat/img00002.png": 2,
             "dog/img00003.png": 3, "dog/img00004.png": 4}
    ids = {documented_id(rel): n for rel, n in files.items()}
    assert "cat_img00000.png-" + hashlib.sha256(b"cat/img00000.png").hexdigest()[:10] in ids
    assert app_content(clarifai_raw, clarifai_app) == {
        input_id: {"concepts": ["cat" if n < 3 else "dog"], "regions": [], "datasets": []}
        for input_id, n in ids.items()}
    media = app_media(clarifai_raw, clarifai_app, clarifai_server.keys[0])
    assert {input_id: media[input_id] for input_id in ids} == {
        input_id: png(n) for input_id, n in ids.items()}


def test_coco_instances(compat_dir, clarifai_server, clarifai_app, clarifai_raw, tmp_path):
    root = compat_dir / "datumaro/coco_dataset/coco_instances"
    report = _sync(clarifai_server, clarifai_app, root, tmp_path)
    assert report.annotations == 3
    val = json.loads((root / "annotations/instances_val.json").read_text())
    rle = val["annotations"][1]["segmentation"]
    assert rle == {"counts": [0, 20, 30], "size": [10, 5]}
    # Ids are <split>-<file name>; a.jpg is 10×5 with box [2, 2, 3, 1] of category 2 ('b');
    # b.jpg is 5×10 with a polygon of category 1 ('a') and an RLE mask of category 2.
    assert app_content(clarifai_raw, clarifai_app) == {
        "train-a.jpg": {"concepts": [], "datasets": [],
                        "regions": [_box(2, 2, 2 + 3, 2 + 1, 10, 5, "b")]},
        "val-b.jpg": {"concepts": [], "datasets": [], "regions": sorted([
            ("mask", ("b",)),
            ("polygon", ((0.0, 0.0), (0.0, 0.2), (0.2, 0.2), (0.2, 0.0)), ("a",))])},
    }
    assert app_masks(clarifai_raw, clarifai_app, clarifai_server.keys[0]) == {
        "val-b.jpg": [(("b",), (5, 10), _rle_pixels(rle["counts"], 10, 5))]}
    assert len(_rle_pixels(rle["counts"], 10, 5)) == 20  # the first two columns


def test_voc_objects_parts_masks_and_labels(compat_dir, clarifai_server, clarifai_app,
                                            clarifai_raw, tmp_path):
    root = compat_dir / "datumaro/voc_dataset/voc_dataset1"
    _sync(clarifai_server, clarifai_app, root, tmp_path)
    # Image labels of ImageSets/Main/<class>_train.txt: 1 present, -1 absent (value 0).
    labels = {}
    for path in sorted((root / "ImageSets/Main").glob("*_train.txt")):
        for line in path.read_text().splitlines():
            image_id, flag = line.split()
            labels.setdefault(image_id, {})[path.name[:-len("_train.txt")]] = \
                1.0 if flag == "1" else 0.0
    assert len(labels["2007_000001"]) == 22
    # 2007_000001.xml: 20×10; cat (1,2)-(3,4); person (4,5)-(6,7) with a head (5.5,6)-(7.5,8).
    content = app_content(clarifai_raw, clarifai_app)
    assert content["2007_000001"]["regions"] == sorted([
        _box(1, 2, 3, 4, 20, 10, "cat"), _box(4, 5, 6, 7, 20, 10, "person"),
        _box(5.5, 6, 7.5, 8, 20, 10, "head"), ("mask", ("cat",)), ("mask", ("bicycle",))])
    assert content["2007_000002"]["regions"] == []
    response = clarifai_raw.call("ListInputs", service_pb2.ListInputsRequest(
        user_app_id=clarifai_app.user_app_id))
    values = {inp.id: {c.id: round(c.value, 4) for c in inp.data.concepts}
              for inp in response.inputs}
    assert values == {"2007_000001": labels["2007_000001"], "2007_000002": {}}
    # Every input has its input-level annotation (the API makes one per input, labelled or
    # not) beside one annotation per region: 2 inputs + 5 regions of 2007_000001.
    annotations = clarifai_raw.call("ListAnnotations", service_pb2.ListAnnotationsRequest(
        user_app_id=clarifai_app.user_app_id)).annotations
    regions = sum(len(content[i]["regions"]) for i in content)
    assert len(annotations) == len(content) + regions == 2 + 5
    assert sorted(a.input_id for a in annotations if a.input_level) == sorted(content)
    # SegmentationObject's one colour is object 1 (the cat); SegmentationClass's is VOC
    # palette index 2 (bicycle); both cover the whole 20×10 image.
    every = frozenset((x, y) for x in range(20) for y in range(10))
    assert mask_pixels((root / "SegmentationObject/2007_000001.png").read_bytes()) == \
        ((20, 10), every)
    assert app_masks(clarifai_raw, clarifai_app, clarifai_server.keys[0]) == {
        "2007_000001": [(("bicycle",), (20, 10), every), (("cat",), (20, 10), every)]}


def test_yolo_boxes_polygons_and_negatives(clarifai_server, clarifai_app, clarifai_raw,
                                           tmp_path):
    root = tmp_path / "yolo"
    for split, name in (("train", "a.png"), ("val", "b.png")):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        (root / "images" / split / name).write_bytes(png(7 if split == "train" else 8, 10))
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\n"
                                    "names: [cat, dog]\n")
    # A box of class 0 centred at (0.5, 0.5), 0.2 wide and 0.4 high; a triangle of class 1.
    (root / "labels/train/a.txt").write_text("0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.3 0.1 0.3 0.3\n")
    (root / "labels/val/b.txt").write_text("")  # a negative: no regions
    report = _sync(clarifai_server, clarifai_app, root, tmp_path)
    assert report.annotations == 2
    # Ids are <split>-<file name> (images/train/a.png → train-a.png); polygon points are
    # (row, col) = (y, x).
    assert app_content(clarifai_raw, clarifai_app) == {
        "train-a.png": {"concepts": [], "datasets": [], "regions": sorted([
            _box(0.4, 0.3, 0.6, 0.7, 1, 1, "cat"),
            ("polygon", ((0.1, 0.1), (0.1, 0.3), (0.3, 0.3)), ("dog",))])},
        "val-b.png": {"concepts": [], "datasets": [], "regions": []},
    }
    media = app_media(clarifai_raw, clarifai_app, clarifai_server.keys[0])
    assert media == {"train-a.png": png(7, 10), "val-b.png": png(8, 10)}
