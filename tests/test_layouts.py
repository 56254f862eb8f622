"""COCO and VOC as real tools lay them out (Roboflow, CVAT, Label Studio, FiftyOne, LabelImg,
the official SDK's example data): the right connector is detected, the images are found,
the counts are exact after a sync into the local server, and again after export and re-read.
"""

from __future__ import annotations

import pytest

from clarifai_connect.plugins import PluginRegistry
from clarifai_connect.records import Notice, Problem, Record

from . import layouts
from .export_support import export_from, sync_into
from .sync_support import app_content


def read(root, fmt="auto"):
    registry = PluginRegistry().load()
    items = list(registry.open_reader(str(root), fmt))
    return ({i.id: i for i in items if isinstance(i, Record)},
            [i for i in items if isinstance(i, Problem)],
            [i for i in items if isinstance(i, Notice)])


def names(notices, kind="ignored"):
    return sorted(n.source.rsplit("/", 1)[-1] for n in notices if n.kind == kind)


# (builder, format, ids, regions per id, ignored file names, repaired count)
LAYOUTS = {
    "roboflow-coco": (layouts.roboflow_coco, "coco",
                      {"train-img1_jpg.rf.3a5b.jpg": 2, "train-img2_jpg.rf.9c1d.jpg": 1,
                       "valid-img3_jpg.rf.77aa.jpg": 1, "test-img4_jpg.rf.0b0b.jpg": 0},
                      ["README.roboflow.txt"], 0),
    "cvat-coco": (layouts.cvat_coco, "coco",
                  {"default-frame_000000.jpg": 2, "default-frame_000001.jpg": 1}, [], 1),
    "cvat-coco-at-root": (lambda root: layouts.cvat_coco(root, at_root=True), "coco",
                          {"default-frame_000000.jpg": 2, "default-frame_000001.jpg": 1}, [], 1),
    "label-studio-coco": (layouts.label_studio_coco, "coco",
                          {"images-1f3c2a9e-plane.jpg": 1, "images-8d0b11aa-street.jpg": 1},
                          [], 0),
    "fiftyone-coco": (layouts.fiftyone_coco, "coco", {"a.jpg": 1, "b.jpg": 0, "c.jpg": 1}, [], 0),
    "sdk-coco": (layouts.sdk_coco, "coco", {"val2017_subset-000000000139.jpg": 1,
                                            "val2017_subset-000000000285.jpg": 1},
                 ["dataset.py"], 0),
    "sdk-voc": (layouts.sdk_voc, "voc", {"2011_000430": 1, "2008_000853": 2}, [], 0),
    "roboflow-voc": (layouts.roboflow_voc, "voc",
                     {"train-img1_jpg.rf.3a5b": 2, "train-img2_jpg.rf.9c1d": 1,
                      "valid-img3_jpg.rf.77aa": 1, "test-img4_jpg.rf.0b0b": 0},
                     ["README.roboflow.txt"], 0),
    "labelimg": (layouts.labelimg, "voc", {"IMG_0001": 1, "IMG_0002": 2},
                 [".DS_Store", "IMG_0003.JPG"], 0),
    "fiftyone-voc": (layouts.fiftyone_voc, "voc", {"a": 1, "b": 1}, [], 0),
    "label-studio-voc": (layouts.label_studio_voc, "voc", {"1f3c2a9e-plane": 1}, [], 0),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_is_detected_and_read(name, tmp_path):
    builder, fmt, want, ignored, repaired = LAYOUTS[name]
    root = builder(tmp_path / name)
    assert PluginRegistry().load().detect_format(str(root)) == fmt
    records, problems, notices = read(root)
    assert problems == []
    assert {i: len(r.regions) for i, r in records.items()} == want
    assert names(notices) == ignored
    assert len([n for n in notices if n.kind == "repaired"]) == repaired
    for record in records.values():
        with open(record.media.uri, "rb") as handle:
            assert handle.read(2) == b"\xff\xd8"  # the image itself was found


def test_splits_come_from_folders(tmp_path):
    records, _, _ = read(layouts.roboflow_coco(tmp_path / "coco"))
    assert {r.metadata["coco"]["split"] for r in records.values()} == {"train", "valid", "test"}
    # one split's file as the source: its folder still names the split
    records, _, _ = read(tmp_path / "coco/valid/_annotations.coco.json")
    assert [r.metadata["coco"]["split"] for r in records.values()] == ["valid"]
    assert sorted(records) == ["valid-img3_jpg.rf.77aa.jpg"]
    records, _, _ = read(layouts.roboflow_voc(tmp_path / "voc"))
    assert {i: r.metadata["voc"]["split"] for i, r in records.items()} == {
        "train-img1_jpg.rf.3a5b": "train", "train-img2_jpg.rf.9c1d": "train",
        "valid-img3_jpg.rf.77aa": "valid", "test-img4_jpg.rf.0b0b": "test"}


def test_voc_path_from_another_machine_resolves_by_basename(tmp_path):
    root = layouts.labelimg(tmp_path / "li")
    xml = (root / "IMG_0001.xml").read_text().replace("<filename>IMG_0001.JPG</filename>",
                                                      "<filename></filename>")
    (root / "IMG_0001.xml").write_text(xml)
    records, problems, _ = read(root, "voc")
    assert problems == [] and records["IMG_0001"].media.uri == str(root / "IMG_0001.JPG")


def test_coco_negative_width_is_repaired_and_reported(tmp_path):
    records, problems, notices = read(layouts.cvat_coco(tmp_path / "cvat"))
    (repair,) = [n for n in notices if n.kind == "repaired"]
    assert repair.id == "default-frame_000001.jpg" and "negative width normalized" in repair.reason
    (region,) = records["default-frame_000001.jpg"].regions
    assert region.box.left_col == pytest.approx((683.4 - 44.6) / 20 / 64)
    assert region.box.right_col == pytest.approx(683.4 / 20 / 64)


@pytest.mark.parametrize("name", ["roboflow-coco", "cvat-coco", "label-studio-coco",
                                  "sdk-voc", "roboflow-voc", "labelimg"])
def test_layout_syncs_and_exports_with_exact_counts(name, clarifai_server, clarifai_app,
                                                    clarifai_raw, tmp_path):
    builder, fmt, want, ignored, repaired = LAYOUTS[name]
    root = builder(tmp_path / name)
    report = sync_into(clarifai_server, clarifai_app, root, tmp_path)
    assert (report.created, report.ignored, report.repaired) == (len(want), len(ignored),
                                                                 repaired), report.summary()
    content = app_content(clarifai_raw, clarifai_app)
    assert {i: len(v["regions"]) for i, v in content.items()} == want
    concepts = {c for v in content.values() for *_, c in v["regions"]}
    out = tmp_path / "out"
    result = export_from(clarifai_server, clarifai_app, out, fmt, dataset="ds")
    assert result.ok and result.exported == len(want), result.summary()
    again, problems, _ = read(out, fmt)
    assert problems == []
    assert sorted(len(r.regions) for r in again.values()) == sorted(want.values())
    assert {c.id for r in again.values() for g in r.regions for c in g.concepts} == \
        {c for group in concepts for c in group}
