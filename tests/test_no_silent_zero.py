"""No silent zero: nothing read from a folder that holds files is an error naming what was
found and the closest format; files a connector skips are counted as ignored, in the report
file too; `validate` says which connector it chose and why."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import clarifai_connect
from clarifai_connect.cli import cli
from clarifai_connect.errors import SourceError
from clarifai_connect.validation import validate_source

from . import layouts


def test_sync_reading_nothing_is_an_error_with_the_closest_match(clarifai_server,
                                                                  clarifai_app, tmp_path):
    root = layouts.roboflow_voc(tmp_path / "voc")
    result = CliRunner().invoke(cli, [
        "sync", str(root), "--format", "coco", "--app",
        f"{clarifai_app.user_id}/{clarifai_app.app_id}", "--base-url", clarifai_server.base_url,
        "--pat", clarifai_server.keys[0], "--state", str(tmp_path / "s.db")])
    assert result.exit_code == 2, result.output  # usage: a wrong --format, nothing sent
    assert "read 0 items" in result.output
    assert "with the coco connector (it looks for JSON files" in result.output
    assert "4 .jpg files, 4 .xml files beside images" in result.output
    assert "did you mean --format voc?" in result.output


def test_validate_reading_nothing_names_yolo(tmp_path):
    root = layouts.ultralytics_detect(tmp_path / "coco8")
    with pytest.raises(SourceError) as caught:
        validate_source(str(root), "voc")
    assert "with the voc connector" in str(caught.value)
    assert "5 .jpg files" in str(caught.value)
    assert "did you mean --format yolo?" in str(caught.value)
    result = CliRunner().invoke(cli, ["validate", str(root), "--format", "voc"])
    assert result.exit_code == 2 and "read 0 items" in result.output


def test_an_empty_folder_is_not_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    report = validate_source(str(tmp_path / "empty"), "voc")
    assert report.ok and report.records == 0


def test_validate_says_what_it_chose_and_why(tmp_path):
    cases = {layouts.sdk_voc: "chosen:   voc: detected: Pascal VOC XML (<annotation>) in "
                              "annotations/",
             layouts.labelimg: "chosen:   voc: detected: Pascal VOC XML (<annotation>) beside "
                               "the images",
             layouts.roboflow_coco: "chosen:   coco: detected: COCO annotations in "
                                    "test/_annotations.coco.json",
             layouts.cvat_coco: "chosen:   coco: detected: COCO annotations in "
                                "annotations/instances_default.json",
             layouts.roboflow_yolov8: "chosen:   yolo: detected: data.yaml with names and "
                                      "train/val",
             layouts.label_studio_yolo: "chosen:   yolo: detected: images/ and labels/ folders"}
    for n, (builder, line) in enumerate(cases.items()):
        result = CliRunner().invoke(cli, ["validate", str(builder(tmp_path / str(n)))])
        assert line in result.output, result.output
    given = CliRunner().invoke(cli, ["validate", str(layouts.sdk_voc(tmp_path / "g")),
                                     "--format", "voc"])
    assert "chosen:   voc: given with --format" in given.output


def test_ignored_files_are_counted_and_written_never_failed(clarifai_server, clarifai_app,
                                                            tmp_path):
    root = layouts.roboflow_yolov8(tmp_path / "rf")
    (root / "train/images/.DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "convert.py").write_text("print('hi')\n")
    report = clarifai_connect.sync(
        str(root), f"{clarifai_app.user_id}/{clarifai_app.app_id}",
        base_url=clarifai_server.base_url, pat=clarifai_server.keys[0],
        state=tmp_path / "s.db", report=tmp_path / "r.jsonl")
    assert (report.created, report.failed, report.ignored) == (4, 0, 4), report.summary()
    assert report.ok and "ignored 4 files" in report.summary()
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    ignored = sorted(x["source"].rsplit("/", 1)[1] for x in lines if x.get("status") == "ignored")
    assert ignored == [".DS_Store", "README.dataset.txt", "README.roboflow.txt", "convert.py"]
    assert lines[-1]["summary"]["ignored"] == 4 and lines[-1]["summary"]["failed"] == 0
    result = CliRunner().invoke(cli, ["validate", str(root)])
    assert result.exit_code == 0, result.output
    assert "ignored: " in result.output and "convert.py: not part of a YOLO dataset" in \
        result.output
    assert "ignored:  4 files that are not items of this format" in result.output


def test_repairs_are_reported_in_the_report_file(clarifai_server, clarifai_app, tmp_path):
    root = layouts.cvat_coco(tmp_path / "cvat")
    report = clarifai_connect.sync(
        str(root), f"{clarifai_app.user_id}/{clarifai_app.app_id}",
        base_url=clarifai_server.base_url, pat=clarifai_server.keys[0],
        state=tmp_path / "s.db", report=tmp_path / "r.jsonl")
    assert (report.created, report.repaired, report.failed) == (2, 1, 0)
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    (repair,) = [x for x in lines if x.get("status") == "repaired"]
    assert repair["id"] == "default-frame_000001.jpg"
    assert "negative width normalized" in repair["reason"]
    assert "repaired 1 values" in report.summary()


def test_detection_stays_cheap_on_many_class_folders(tmp_path, monkeypatch):
    """Looking for COCO, VOC and YOLO files by content must not list a whole class-folder
    tree (on S3, a thousand folders of images) only to say "not mine"."""
    import fsspec.implementations.local as local

    from clarifai_connect.plugins import PluginRegistry

    from .sync_support import class_folders

    root = class_folders(tmp_path / "pets", {f"class{n:03d}": 1 for n in range(300)})
    calls = []
    listing = local.LocalFileSystem.ls

    def counted(self, path, *args, **kwargs):
        calls.append(path)
        return listing(self, path, *args, **kwargs)

    monkeypatch.setattr(local.LocalFileSystem, "ls", counted)
    assert PluginRegistry().load().detect_format(str(root)) == "folder"
    assert len(calls) < 150, len(calls)  # three detectors, each a bounded look
