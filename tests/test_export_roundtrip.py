"""Round trips through the real local server: COCO → app → COCO and VOC → app → VOC give
back the same images, labels, boxes, polygons, masks and keypoints, read by our own
connectors and compared record by record — through a paged listing and through a dataset
version's export archive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clarifai_connect.client import Dataset

from .export_support import (
    assert_same_records,
    export_from,
    generated_coco,
    read_all,
    sync_into,
)

COCO_COMPAT = ("coco_instances", "coco_captions", "coco_person_keypoints")


def _version(server, app) -> str:
    dataset = Dataset(dataset_id="ds", user_id=app.user_id, app_id=app.app_id,
                      base_url=server.base_url, pat=server.keys[0])
    return dataset.create_version().version.id


def _export(server, app, out: Path, fmt: str, via: str, **kwargs):
    if via == "version":
        kwargs["version"] = _version(server, app)
    done: list[int] = []
    report = export_from(server, app, out, fmt, dataset="ds", report=out.parent / "r.jsonl",
                         on_progress=done.append, **kwargs)
    assert sum(done) == report.read
    lines = [json.loads(line) for line in (out.parent / "r.jsonl").read_text().splitlines()]
    assert lines[-1]["summary"]["read"] == report.read
    assert len(lines) - 1 == report.read  # one line per input, then the summary
    return report


@pytest.mark.parametrize("via", ["listing", "version"])
@pytest.mark.parametrize("name", COCO_COMPAT)
def test_coco_compat_round_trip(name, via, compat_dir, clarifai_server, clarifai_app, tmp_path):
    source = compat_dir / "datumaro" / "coco_dataset" / name
    before, problems = read_all(source, "coco")
    assert before and not problems
    sync_into(clarifai_server, clarifai_app, source, tmp_path)
    out = tmp_path / "out"
    report = _export(clarifai_server, clarifai_app, out, "coco", via)
    assert report.ok and report.exported == len(before), report.summary()
    assert not report.warnings, report.warnings
    after, problems = read_all(out, "coco")
    assert not problems
    assert_same_records(before, after, same_ids=True)
    for record_id, record in before.items():
        want = record.metadata["coco"].get("captions", [])
        got = after[record_id].metadata["coco"].get("captions", [])
        assert [c["caption"] for c in got] == [c["caption"] for c in want]


@pytest.mark.parametrize("via", ["listing", "version"])
def test_generated_coco_round_trip(via, clarifai_server, clarifai_app, tmp_path):
    source = generated_coco(tmp_path / "src")
    before, problems = read_all(source, "coco")
    assert len(before) == 5 and not problems
    sync_into(clarifai_server, clarifai_app, source, tmp_path)
    out = tmp_path / "out"
    report = _export(clarifai_server, clarifai_app, out, "coco", via)
    assert report.ok and report.exported == 5 and not report.warnings, report.summary()
    after, problems = read_all(out, "coco")
    assert not problems
    assert_same_records(before, after, same_ids=True)
    written = json.loads((out / "annotations" / "instances_train.json").read_text())
    # The source's category ids, supercategories and keypoint names survive the trip.
    by_id = {c["id"]: c for c in written["categories"]}
    assert {i: by_id[i]["name"] for i in by_id} == {3: "cat", 7: "dog", 12: "person",
                                                    20: "indoor"}
    assert by_id[3]["supercategory"] == "animal"
    assert by_id[12]["keypoints"] == ["nose", "left_eye"]
    two_polygons = [a for a in written["annotations"] if a["category_id"] == 7]
    assert all(len(a["segmentation"]) == 2 for a in two_polygons)
    crowd = [a for a in written["annotations"] if a.get("iscrowd")]
    assert len(crowd) == 3 and all(isinstance(a["segmentation"]["counts"], str) for a in crowd)
    assert sorted(i["file_name"] for i in written["images"]) == [f"train_{n}.png"
                                                                 for n in range(3)]


@pytest.mark.parametrize("via", ["listing", "version"])
def test_voc_compat_round_trip(via, compat_dir, clarifai_server, clarifai_app, tmp_path):
    source = compat_dir / "datumaro" / "voc_dataset" / "voc_dataset1"
    before, problems = read_all(source, "voc")
    assert before and not problems
    kinds = {r.kind for record in before.values() for r in record.regions}
    assert kinds == {"box", "mask"}  # object and class masks, boxes and parts
    sync_into(clarifai_server, clarifai_app, source, tmp_path)
    out = tmp_path / "out"
    report = _export(clarifai_server, clarifai_app, out, "voc", via)
    assert report.ok and report.exported == len(before) and not report.warnings, \
        report.summary()
    after, problems = read_all(out, "voc")
    assert not problems
    assert_same_records(before, after, same_ids=True)
    for record_id, record in before.items():
        want, got = record.metadata["voc"], after[record_id].metadata["voc"]
        assert got.get("image_sets") == want.get("image_sets")
        for a, b in zip(want.get("objects", []), got.get("objects", []), strict=True):
            assert (b["name"], b.get("pose"), b.get("truncated"), b.get("actions")) == \
                (a["name"], a.get("pose"), a.get("truncated"), a.get("actions"))
            assert [p["name"] for p in b.get("parts", [])] == \
                [p["name"] for p in a.get("parts", [])]


def test_coco_to_voc_names_what_voc_cannot_hold(clarifai_server, clarifai_app, tmp_path):
    source = generated_coco(tmp_path / "src")
    sync_into(clarifai_server, clarifai_app, source, tmp_path)
    out = tmp_path / "voc"
    report = export_from(clarifai_server, clarifai_app, out, "voc", dataset="ds",
                         report=tmp_path / "r.jsonl")
    assert report.ok and report.exported == 5
    # Polygons and keypoints have no place in VOC: named, counted per input, never silent.
    assert report.warnings["polygon regions not written (VOC holds boxes and masks)"] == 5
    assert report.warnings["point regions not written (VOC holds boxes and masks)"] == 5
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()[:-1]]
    assert all("polygon regions not written (VOC holds boxes and masks)" in line["warnings"]
               for line in lines)
    after, problems = read_all(out, "voc")
    assert not problems and len(after) == 5
    # The boxes and the masks (as class masks) are there.
    for record in after.values():
        kinds = sorted(r.kind for r in record.regions)
        assert kinds == ["box", "box", "mask"], kinds
