"""Hostile dataset files: no built-in connector reads media outside its source.

Each case names a local file outside the source (``../``, an absolute path, ``file://``, a
symlink); the item fails with the reason, the rest of the source is read, and an allowed
folder (``--allow-path``) opens exactly that folder.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from clarifai_connect import sync
from clarifai_connect.cli import cli
from clarifai_connect.plugins import PluginRegistry
from clarifai_connect.records import Problem, Record

from .sync_support import png

SECRET_TEXT = b"top secret, never an input"


@pytest.fixture
def outside(tmp_path):
    """A file outside every source of the test, and its folder."""
    folder = tmp_path / "outside"
    folder.mkdir()
    secret = folder / "secret.png"
    secret.write_bytes(png(99))  # a valid image: only the boundary can stop it
    return secret


def escapes(secret, depth):
    """The references that point at ``secret`` from a folder ``depth`` levels below tmp_path
    (the last one only once a filesystem or server decodes it)."""
    up = "../" * depth
    return [f"{up}outside/{secret.name}", str(secret), f"file://{secret}",
            up.replace("/", "\\") + "outside\\" + secret.name,
            "%2e%2e/" * depth + "outside/" + secret.name]


def read(uri, fmt, allowed=(), **options):
    items = list(PluginRegistry().load().open_reader(str(uri), fmt, allowed_paths=allowed,
                                                     **options))
    return ([i for i in items if isinstance(i, Record)],
            [i for i in items if isinstance(i, Problem)])


def assert_refused(problems, count):
    assert len(problems) == count, problems
    assert all("outside the source" in p.reason for p in problems), problems


def coco_source(root, names):
    (root / "images").mkdir(parents=True)
    (root / "images" / "good.png").write_bytes(png(1))
    doc = {"categories": [{"id": 1, "name": "cat"}],
           "images": [{"id": i + 1, "file_name": n, "width": 2, "height": 2}
                      for i, n in enumerate(["good.png", *names])],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}]}
    (root / "annotations").mkdir()
    path = root / "annotations" / "instances_default.json"
    path.write_text(json.dumps(doc))
    return root


def test_coco_file_names_outside_the_dataset_fail_their_image(tmp_path, outside):
    root = coco_source(tmp_path / "data" / "coco", escapes(outside, 3))
    records, problems = read(root, "coco")
    assert [r.media.uri for r in records] == [str(root / "images" / "good.png")]
    assert_refused(problems, 5)
    assert all("image" in p.source and p.id for p in problems)  # located, and accounted for
    # The user allows that folder: the same references now resolve.
    records, problems = read(root, "coco", allowed=[str(outside.parent)])
    # ..\..\ and ../../ name the same image: the second one's id is taken.
    assert len(records) == 5 and [p.reason.split("' that ")[1] for p in problems] == [
        "../../../outside/secret.png already has"]
    assert {r.media.read_bytes() for r in records[1:4]} == {outside.read_bytes()}


def test_coco_urls_are_kept_and_file_urls_refused(tmp_path, outside):
    root = coco_source(tmp_path / "data" / "coco", [])
    doc = json.loads((root / "annotations" / "instances_default.json").read_text())
    doc["images"] += [{"id": 7, "file_name": "gone.png", "coco_url": f"file://{outside}"},
                      {"id": 8, "file_name": "web.png", "coco_url": "https://example.com/w.png"}]
    (root / "annotations" / "instances_default.json").write_text(json.dumps(doc))
    records, problems = read(root, "coco", prefer_urls=True)
    assert sorted(r.media.uri for r in records) == [str(root / "images" / "good.png"),
                                                    "https://example.com/w.png"]
    assert_refused(problems, 1)


def voc_source(root, names):
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / folder).mkdir(parents=True)
    (root / "JPEGImages" / "good.jpg").write_bytes(png(2))
    for index, name in enumerate(["good.jpg", *names]):
        (root / "Annotations" / f"img{index}.xml").write_text(
            f"<annotation><filename>{name}</filename><size><width>2</width>"
            "<height>2</height></size></annotation>")
    return root


def test_voc_filenames_outside_the_folder_fail_their_image(tmp_path, outside):
    root = voc_source(tmp_path / "data" / "voc", escapes(outside, 3))
    records, problems = read(root, "voc")
    assert [r.media.uri for r in records] == [str(root / "JPEGImages" / "good.jpg")]
    assert_refused(problems, 5)
    records, problems = read(root, "voc", allowed=[str(outside.parent)])
    assert problems == [] and len(records) == 6


def test_csv_paths_outside_the_table_fail_their_row(tmp_path, outside):
    root = tmp_path / "data" / "table"
    root.mkdir(parents=True)
    (root / "good.png").write_bytes(png(3))
    rows = ["inputid,input,concepts", "good,good.png,cat"] + [
        f"bad{i},{ref},cat" for i, ref in enumerate(escapes(outside, 2))]
    (root / "data.csv").write_text("\n".join(rows) + "\n")
    records, problems = read(root / "data.csv", "csv")
    assert [r.id for r in records] == ["good"]
    assert_refused(problems, 5)
    assert [p.source.rsplit(":", 1)[1] for p in problems] == ["3", "4", "5", "6", "7"]
    records, problems = read(root / "data.csv", "csv", allowed=[str(outside.parent)])
    # On the local disk %2e%2e is a name, not "..": that file does not exist.
    assert len(records) == 5 and [p.reason.split(":")[0] for p in problems] == ["file not found"]


def test_parquet_paths_outside_the_dataset_fail_their_row(tmp_path, outside):
    root = tmp_path / "data" / "pq"
    root.mkdir(parents=True)
    (root / "good.png").write_bytes(png(4))
    pq.write_table(pa.table({"input": ["good.png", *escapes(outside, 2)]}), root / "t.parquet")
    records, problems = read(root / "t.parquet", "parquet")
    assert [r.media.uri for r in records] == [str(root / "good.png")]
    assert_refused(problems, 5)


def test_folder_symlinks_out_of_the_folder_are_not_items(tmp_path, outside):
    root = tmp_path / "data" / "photos"
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "real.png").write_bytes(png(5))
    (root / "cat" / "alias.png").symlink_to(root / "cat" / "real.png")  # inside: kept
    (root / "cat" / "leak.png").symlink_to(outside)
    (root / "dir-leak").symlink_to(outside.parent, target_is_directory=True)
    (root / "loop.png").symlink_to(root / "loop.png")
    records, problems = read(root, "folder")
    assert sorted(r.source.rsplit("/", 1)[1] for r in records) == ["alias.png", "real.png"]
    reasons = {p.source.rsplit("/", 1)[1]: p.reason for p in problems}
    assert set(reasons) == {"leak.png", "dir-leak", "loop.png"}
    assert "outside the source" in reasons["leak.png"]
    assert "outside the source" in reasons["dir-leak"]
    assert "symlink loop" in reasons["loop.png"]


def test_sync_fails_the_hostile_items_and_sends_the_rest(tmp_path, outside, clarifai_server,
                                                         clarifai_app, clarifai_pat):
    root = coco_source(tmp_path / "data" / "coco", escapes(outside, 3))
    lines = tmp_path / "report.jsonl"
    report = sync(str(root), clarifai_app.target, base_url=clarifai_server.base_url,
                  pat=clarifai_pat, state=tmp_path / "state.db", report=lines)
    assert report.created == 1 and report.failed == 5
    failed = [json.loads(line) for line in lines.read_text().splitlines()
              if json.loads(line).get("status") == "failed"]
    assert len(failed) == 5 and all("outside the source" in f["reason"] for f in failed)


def test_cli_and_yaml_allow_path(tmp_path, outside, clarifai_server, clarifai_app,
                                 clarifai_pat):
    root = coco_source(tmp_path / "data" / "coco", [str(outside)])
    common = ["--app", clarifai_app.target, "--base-url", clarifai_server.base_url,
              "--pat", clarifai_pat]
    refused = CliRunner().invoke(cli, ["sync", str(root), "--state", str(tmp_path / "a.db"),
                                       *common])
    assert refused.exit_code == 1 and "1 failed" in refused.output, refused.output
    settings = tmp_path / "data" / "sync.yaml"
    settings.write_text(f"source: coco\nallow_paths: [../outside]\nstate: {tmp_path}/b.db\n")
    allowed = CliRunner().invoke(cli, ["sync", str(settings), *common])
    assert allowed.exit_code == 0, allowed.output
    flag = CliRunner().invoke(cli, ["sync", str(root), "--state", str(tmp_path / "c.db"),
                                    "--allow-path", str(outside.parent), *common])
    assert flag.exit_code == 0, flag.output
    missing = CliRunner().invoke(cli, ["validate", str(root), "--allow-path",
                                       str(tmp_path / "nowhere")])
    assert missing.exit_code != 0 and "no such folder" in missing.output


def test_tables_held_in_memory_stay_inside_their_media_root(tmp_path, outside):
    from clarifai_connect.memory import open_source

    root = tmp_path / "data"
    root.mkdir()
    (root / "good.png").write_bytes(png(6))
    table = pa.table({"input": ["good.png", str(outside), "../outside/secret.png"]})
    items = list(open_source(table, source_id="t", options={"media_root": str(root)}).reader)
    assert [i.media.uri for i in items if isinstance(i, Record)] == [str(root / "good.png")]
    assert_refused([i for i in items if isinstance(i, Problem)], 2)
    opened = open_source(table, source_id="t", options={"media_root": str(root)},
                         allowed_paths=[str(outside.parent)])
    assert all(isinstance(i, Record) for i in opened.reader)
