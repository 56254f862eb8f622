"""The YOLO connector on the layouts Ultralytics, Roboflow, CVAT, Label Studio, Darknet and
the official SDK's example data write, and the yolo exporter: what Ultralytics reads, and
YOLO → app → YOLO gives back the same boxes."""

from __future__ import annotations

import pytest
import yaml

from clarifai_connect.plugins import PluginRegistry
from clarifai_connect.records import Notice, Problem, Record
from connectors.yolo import YoloReader, label_path

from . import layouts
from .export_support import export_from, read_all, sync_into
from .sync_support import app_content


def read(uri, **options):
    items = list(YoloReader(str(uri), **options))
    return ({i.id: i for i in items if isinstance(i, Record)},
            [i for i in items if isinstance(i, Problem)],
            [i for i in items if isinstance(i, Notice)])


def boxes(record):
    return sorted((r.concepts[0].name, *(round(v, 6) for v in (
        r.box.left_col, r.box.top_row, r.box.right_col, r.box.bottom_row)))
        for r in record.regions if r.box is not None)


def detected(root):
    return PluginRegistry().load().detect_format(str(root))


def test_label_path_follows_ultralytics():
    assert label_path("images/train/a.jpg") == "labels/train/a.txt"
    assert label_path("train/images/a.b.png") == "train/labels/a.b.txt"
    assert label_path("images/x/images/a.jpg") == "images/x/labels/a.txt"  # the last one
    assert label_path("data/set1/a.jpg") == "data/set1/a.txt"  # beside


def test_ultralytics_detection_layout(tmp_path):
    root = layouts.ultralytics_detect(tmp_path / "coco8")
    assert detected(root) == "yolo"
    records, problems, notices = read(root)
    assert problems == [] and notices == []
    assert sorted(records) == ["train-000000000009.jpg", "train-000000000025.jpg",
                               "train-000000000030.jpg", "train-000000000034.jpg",
                               "val-000000000036.jpg"]
    first = records["train-000000000009.jpg"]
    assert boxes(first) == [("bicycle", 0.2, 0.65, 0.3, 0.85), ("person", 0.35, 0.3, 0.65, 0.5)]
    assert first.metadata["yolo"] == {"split": "train", "path": "images/train/000000000009.jpg",
                                      "labels": "labels/train/000000000009.txt",
                                      "classes": {"person": 0, "bicycle": 1}}
    # negatives: no label file, and an empty one
    assert records["train-000000000030.jpg"].regions == ()
    assert "labels" not in records["train-000000000030.jpg"].metadata["yolo"]
    assert records["train-000000000034.jpg"].regions == ()
    assert records["val-000000000036.jpg"].metadata["yolo"]["split"] == "val"
    # the YAML itself can be the source
    assert sorted(read(root / "data.yaml")[0]) == sorted(records)


def test_ultralytics_segmentation_polygons(tmp_path):
    records, problems, _ = read(layouts.ultralytics_segment(tmp_path / "seg"))
    assert problems == []
    a = records["train-a.jpg"]
    assert [(r.kind, r.concepts[0].name, len(r.polygon)) for r in a.regions] == [
        ("polygon", "cat", 4), ("polygon", "dog", 3)]
    assert (a.regions[0].polygon[1].col, a.regions[0].polygon[1].row) == (0.5, 0.1)


def test_roboflow_yolov8_export(tmp_path):
    root = layouts.roboflow_yolov8(tmp_path / "rf")
    assert detected(root) == "yolo"
    records, problems, notices = read(root)
    assert problems == []
    assert sorted(records) == ["test-img4_jpg.rf.0b0b.jpg", "train-img1_jpg.rf.3a5b.jpg",
                               "train-img2_jpg.rf.9c1d.jpg", "val-img3_jpg.rf.77aa.jpg"]
    assert {r.concepts[0].name for rec in records.values() for r in rec.regions} == \
        {"helmet", "head"}
    # the two READMEs are counted as ignored, by name, never failed
    assert sorted(n.source.rsplit("/", 1)[1] for n in notices) == ["README.dataset.txt",
                                                                   "README.roboflow.txt"]
    assert {n.kind for n in notices} == {"ignored"}


def test_cvat_yolov8_image_list(tmp_path):
    records, problems, notices = read(layouts.cvat_yolov8(tmp_path / "cvat"))
    assert problems == [] and notices == []
    assert sorted(records) == ["train-frame_000000.jpg", "train-frame_000001.jpg"]
    assert [r.concepts[0].name for r in records["train-frame_000000.jpg"].regions] == \
        ["bus", "car"]


def test_cvat_list_cannot_leave_the_dataset(tmp_path):
    root = layouts.cvat_yolov8(tmp_path / "cvat")
    (root / "train.txt").write_text("../../etc/passwd\n/etc/hosts\nimages/train/"
                                    "frame_000000.jpg\n")
    records, problems, _ = read(root)
    assert sorted(records) == ["train-frame_000000.jpg"]
    assert [p.source.rsplit("/", 1)[1] for p in problems] == ["train.txt:1", "train.txt:2"]


def test_label_studio_yolo_export(tmp_path):
    root = layouts.label_studio_yolo(tmp_path / "ls")
    assert detected(root) == "yolo"
    records, problems, notices = read(root)
    assert problems == [] and notices == []
    assert sorted(records) == ["1f3c2a9e-plane.jpg", "8d0b11aa-street.jpg"]
    assert [r.concepts[0].name for r in records["8d0b11aa-street.jpg"].regions] == \
        ["Car", "Car"]


def test_clarifai_sdk_multifolder_example(tmp_path):
    root = layouts.clarifai_multifolder(tmp_path / "multifolder")
    assert detected(root) == "yolo"
    records, problems, notices = read(root)
    assert problems == []
    assert sorted(records) == ["data-set1-0c1d3ad769060ea3.jpg", "data-set2-2c92dcb216b4cbc2.jpg"]
    # no names anywhere: the class index is the concept, as the SDK's loader does
    assert sorted(r.concepts[0].name for r in records["data-set1-0c1d3ad769060ea3.jpg"].regions
                  ) == ["11", "7"]
    assert [n.source.rsplit("/", 1)[1] for n in notices] == ["dataset.py"]


def test_darknet_layout_with_obj_names_and_crlf(tmp_path):
    root = layouts.darknet_yolo(tmp_path / "yolov4")
    assert detected(root) == "yolo"
    records, problems, notices = read(root)
    assert problems == []
    assert boxes(records["data-b.jpg"]) == [("cat", 0.3, 0.3, 0.7, 0.7),
                                            ("dog", 0.1, 0.1, 0.3, 0.3)]
    assert [n.source.rsplit("/", 1)[1] for n in notices] == [".DS_Store"]


def test_cvat_yolo_1_1_export(tmp_path):
    root = layouts.cvat_yolo_1_1(tmp_path / "yolo11")
    assert detected(root) == "yolo"
    records, problems, notices = read(root)
    assert problems == [] and notices == []
    assert boxes(records["obj_train_data-frame_000000.jpg"]) == [
        ("car", 0.05, 0.05, 0.15, 0.15), ("person", 0.375, 0.25, 0.625, 0.75)]
    assert records["obj_train_data-frame_000001.jpg"].regions == ()  # an empty label file


def test_broken_lines_fail_repairable_boxes_are_repaired(tmp_path):
    root = tmp_path / "bad"
    (root / "images/train").mkdir(parents=True)
    (root / "labels/train").mkdir(parents=True)
    (root / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [a, b]\n")
    (root / "images/train/x.jpg").write_bytes(layouts.jpeg(20, 20))
    (root / "labels/train/x.txt").write_text("\n".join([
        "0 0.5 0.5 0.2 0.2",      # 1 fine
        "0 0.5 0.5 -0.2 0.2",     # 2 negative width: the same box, repaired
        "1 0.95 0.5 0.2 0.2",     # 3 past the right edge by 0.05: clipped, repaired
        "5 0.5 0.5 0.2 0.2",      # 4 class 5 is not in names
        "0 nan 0.5 0.2 0.2",      # 5 not a number
        "0 0.5 0.5 0 0.2",        # 6 zero area
        "0 1.5 1.5 0.2 0.2",      # 7 wholly outside
        "0 0.5 0.5 0.2",          # 8 too few values
        "x 0.5 0.5 0.2 0.2",      # 9 not a class index
    ]))
    records, problems, notices = read(root)
    record = records["train-x.jpg"]
    assert boxes(record) == [("a", 0.4, 0.4, 0.6, 0.6), ("a", 0.4, 0.4, 0.6, 0.6),
                             ("b", 0.85, 0.4, 1.0, 0.6)]
    assert [p.source.rsplit(":", 1)[1] for p in problems] == ["4", "5", "6", "7", "8", "9"]
    assert all("the rest of images/train/x.jpg is kept" in p.reason for p in problems)
    assert "not in the dataset's names" in problems[0].reason
    assert "zero area" in problems[2].reason and "wholly outside" in problems[3].reason
    assert [(n.kind, n.source.rsplit(":", 1)[1], n.id) for n in notices[:2]] == [
        ("repaired", "2", "train-x.jpg"), ("repaired", "3", "train-x.jpg")]
    assert "negative width normalized" in notices[0].reason
    assert "clipped" in notices[1].reason
    # val: images/train names the same images again: read once, and said so
    assert sorted(records) == ["train-x.jpg"]
    assert [n.kind for n in notices[2:]] == ["ignored"] and "val" in notices[2].reason


def test_sync_counts_and_round_trip(clarifai_server, clarifai_app, tmp_path):
    """YOLO → app → YOLO: exact counts in the app, the same boxes (within 1e-4), the same
    ids and splits, and a data.yaml Ultralytics reads."""
    source = layouts.ultralytics_detect(tmp_path / "coco8")
    report = sync_into(clarifai_server, clarifai_app, source, tmp_path)
    assert (report.created, report.failed, report.ignored, report.repaired) == (5, 0, 0, 0)
    content = app_content(_raw(clarifai_server), clarifai_app)
    assert len(content) == 5
    assert sum(len(v["regions"]) for v in content.values()) == 5
    assert {c for v in content.values() for *_, c in v["regions"]} == {("person",),
                                                                       ("bicycle",)}
    out = tmp_path / "out"
    result = export_from(clarifai_server, clarifai_app, out, "yolo", dataset="ds")
    assert result.ok and result.exported == 5 and not result.warnings, result.summary()
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["train"] == "images/train" and data["val"] == "images/val"
    assert data["names"] == {0: "person", 1: "bicycle"}  # the source's indices kept
    assert data["path"] == str(out)
    assert (out / "labels/train/000000000030.txt").read_text() == ""  # the negative
    before, _ = read_all(source, "yolo")
    after, problems = read_all(out, "yolo")
    assert not problems and sorted(after) == sorted(before)
    for record_id, record in before.items():
        want, got = boxes(record), boxes(after[record_id])
        assert [w[0] for w in want] == [g[0] for g in got], record_id
        assert all(abs(a - b) <= 1e-4 for w, g in zip(want, got, strict=True)
                   for a, b in zip(w[1:], g[1:], strict=True)), record_id
        assert after[record_id].metadata["yolo"]["split"] == record.metadata["yolo"]["split"]
    assert (out / "labels/train/000000000009.txt").read_text().splitlines() == [
        "0 0.5 0.4 0.3 0.2", "1 0.25 0.75 0.1 0.2"]


def test_polygons_round_trip_and_coco_to_yolo(clarifai_server, clarifai_app, tmp_path):
    source = layouts.ultralytics_segment(tmp_path / "seg")
    sync_into(clarifai_server, clarifai_app, source, tmp_path)
    out = tmp_path / "out"
    result = export_from(clarifai_server, clarifai_app, out, "yolo", dataset="ds")
    assert result.ok and result.exported == 2, result.summary()
    after, problems = read_all(out, "yolo")
    before, _ = read_all(source, "yolo")
    assert not problems and sorted(after) == sorted(before)
    for record_id, record in before.items():
        want = [[(round(p.row, 4), round(p.col, 4)) for p in r.polygon] for r in record.regions]
        got = [[(round(p.row, 4), round(p.col, 4)) for p in r.polygon]
               for r in after[record_id].regions]
        assert sorted(got) == sorted(want), record_id


def test_writer_names_what_yolo_cannot_hold(clarifai_server, clarifai_app, tmp_path):
    from .export_support import generated_coco

    source = generated_coco(tmp_path / "coco")
    sync_into(clarifai_server, clarifai_app, source, tmp_path)
    out = tmp_path / "out"
    result = export_from(clarifai_server, clarifai_app, out, "yolo", dataset="ds")
    assert result.ok and result.exported == 5
    assert result.warnings["mask regions not written (YOLO holds boxes and polygons)"] == 5
    assert result.warnings["point regions not written (YOLO holds boxes and polygons)"] == 5
    assert result.warnings["boxes written as 4-point polygons (a YOLO label file holds "
                           "boxes or polygons, not both)"] == 5
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    after, problems = read_all(out, "yolo")
    assert not problems and len(after) == 5
    # each image: 2 polygons of the dog, 2 boxes (cat, person) written as polygons
    assert all(sorted(r.kind for r in rec.regions) == ["polygon"] * 4 for rec in after.values())


def _raw(server):
    from clarifai_connect.testing import raw_api

    return raw_api(server)


@pytest.mark.parametrize("builder", [layouts.roboflow_yolov8, layouts.label_studio_yolo,
                                     layouts.clarifai_multifolder, layouts.darknet_yolo,
                                     layouts.cvat_yolov8, layouts.cvat_yolo_1_1])
def test_sync_each_layout_exact_counts(builder, clarifai_server, clarifai_app, tmp_path):
    source = builder(tmp_path / "src")
    records, problems, notices = read(source)
    assert not problems
    report = sync_into(clarifai_server, clarifai_app, source, tmp_path)
    assert report.created == len(records) and report.ignored == len(notices)
    content = app_content(_raw(clarifai_server), clarifai_app)
    assert sorted(content) == sorted(records)
    for record_id, record in records.items():
        assert len(content[record_id]["regions"]) == len(record.regions), record_id


def test_symlinks_out_of_the_dataset_are_refused(tmp_path):
    root = layouts.ultralytics_detect(tmp_path / "coco8")
    outside = tmp_path / "outside"
    (outside / "more").mkdir(parents=True)
    (outside / "secret.jpg").write_bytes(layouts.jpeg(8, 8))
    (outside / "more" / "x.jpg").write_bytes(layouts.jpeg(8, 8))
    (root / "images/train/link.jpg").symlink_to(outside / "secret.jpg")
    (root / "images/train/linked").symlink_to(outside / "more")
    records, problems, notices = read(root)
    assert "train-link.jpg" not in records and "train-linked-x.jpg" not in records
    assert [p.source.rsplit("/", 1)[1] for p in problems] == ["link.jpg"]
    assert "outside the source" in problems[0].reason
    # a symlinked folder is never followed: counted as ignored
    assert [n.source.rsplit("/", 1)[1] for n in notices] == ["linked"]
    assert len(records) == 5
