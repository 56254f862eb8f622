"""Each connector synced end to end into the real local server: the app then holds exactly
what the source holds (ids, concepts, regions, datasets), and a second run sends nothing."""

from __future__ import annotations

import posixpath
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import clarifai_connect
from clarifai_connect.engine import RunReport

from .sync_support import (
    app_content,
    class_folders,
    coco_file,
    documented_id,
    png,
    source_content,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "sample"


@pytest.fixture
def run_sync(clarifai_server, clarifai_app, tmp_path):
    """sync() into the test's app on the session server, with a state file per test."""
    def run(source, **kwargs) -> RunReport:
        kwargs.setdefault("state", tmp_path / "state.sqlite")
        return clarifai_connect.sync(
            str(source), f"{clarifai_app.user_id}/{clarifai_app.app_id}",
            base_url=clarifai_server.base_url, pat=clarifai_server.keys[0], **kwargs)
    return run


def _check(report: RunReport, created: int, failed: int = 0) -> None:
    assert (report.created, report.failed, report.updated) == (created, failed, 0), \
        report.summary()
    assert report.read == report.created + report.updated + report.skipped + report.failed


def test_folder_of_class_folders(run_sync, clarifai_raw, clarifai_app, tmp_path):
    root = class_folders(tmp_path / "pets", {"cat": 150, "dog": 140})
    report = run_sync(root, dataset="train", batch_size=64, report=tmp_path / "r.jsonl")
    _check(report, created=290)
    assert report.ok and report.exit_code == 0
    expected = source_content(str(root), dataset="train")
    assert app_content(clarifai_raw, clarifai_app) == expected
    assert {tuple(v["concepts"]) for v in expected.values()} == {("cat",), ("dog",)}
    again = run_sync(root, dataset="train")
    assert (again.created, again.skipped, again.failed) == (0, 290, 0)
    assert app_content(clarifai_raw, clarifai_app) == expected


def test_sample_csv_with_text_and_images(run_sync, clarifai_raw, clarifai_app):
    report = run_sync(EXAMPLES / "labels.csv")
    _check(report, created=8)
    content = app_content(clarifai_raw, clarifai_app)
    assert content == source_content(str(EXAMPLES / "labels.csv"))
    assert content["note-1"]["concepts"] == ["blue"]
    assert content["green-square"]["concepts"] == ["green", "square"]


def test_parquet_with_bytes_column(run_sync, clarifai_raw, clarifai_app, tmp_path):
    table = pa.table({"inputid": [f"p{i}" for i in range(300)],
                      "input": [png(i) for i in range(300)],
                      "concepts": ["even" if i % 2 == 0 else "odd" for i in range(300)]})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=100)
    report = run_sync(tmp_path / "t.parquet")
    _check(report, created=300)
    content = app_content(clarifai_raw, clarifai_app)
    assert content == source_content(str(tmp_path / "t.parquet"))
    assert content["p3"]["concepts"] == ["odd"]


def test_coco_regions_land_as_annotations(run_sync, clarifai_raw, clarifai_app, tmp_path):
    path = coco_file(tmp_path / "coco", images=40, boxes_per_image=3)
    report = run_sync(path, workers=2, batch_size=16)
    _check(report, created=40)
    assert report.annotations == 120
    content = app_content(clarifai_raw, clarifai_app)
    assert content == source_content(str(path))
    assert all(len(v["regions"]) == 3 for v in content.values())


def test_compat_coco_instances_and_imagenet(run_sync, clarifai_raw, clarifai_app, compat_dir,
                                            tmp_path):
    coco = compat_dir / "datumaro/coco_dataset/coco_instances"
    report = run_sync(coco, state=tmp_path / "coco.sqlite")
    _check(report, created=2)
    imagenet = compat_dir / "datumaro/imagenet_dataset"
    report = run_sync(imagenet, format="folder", state=tmp_path / "imagenet.sqlite")
    files = sorted(p.relative_to(imagenet).as_posix() for p in imagenet.rglob("*.jpg"))
    _check(report, created=len(files))
    assert len(files) == 4
    # The folder path is the label ('/' → '-' in a concept id); a file at the root has none.
    imagenet_content = {
        documented_id(rel): {"concepts": [posixpath.dirname(rel).replace("/", "-")]
                             if "/" in rel else [], "regions": [], "datasets": []}
        for rel in files}
    expected = {**source_content(str(coco)), **imagenet_content}
    content = app_content(clarifai_raw, clarifai_app)
    assert content == expected
    assert sorted(k for v in content.values() for k, *_ in v["regions"]) == \
        ["box", "mask", "polygon"]


def test_datasets_named_by_the_source_are_created(run_sync, clarifai_raw, clarifai_app, tmp_path):
    (tmp_path / "t.csv").write_text("inputid,input,split\n"
                                    "a,first text,train\nb,second text,valid\nc,third,train\n")
    report = run_sync(tmp_path / "t.csv", dataset="all",
                      options={"columns": {"dataset": "split"}})
    _check(report, created=3)
    content = app_content(clarifai_raw, clarifai_app)
    assert {k: v["datasets"] for k, v in content.items()} == {
        "a": ["all", "train"], "b": ["all", "valid"], "c": ["all", "train"]}
