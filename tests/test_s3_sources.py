"""Every connector reading ``s3://`` sources from a real S3 API (moto's server on loopback).

The ``s3_endpoint`` fixture (clarifai_connect.testing) sets the usual AWS environment
variables, so most tests pass no storage options at all: the endpoint, credentials and
region come from where boto would find them. One test passes them as storage options instead.
"""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from clarifai_connect.plugins import PluginRegistry
from clarifai_connect.records import Problem, Record
from connectors import listing
from connectors.listing import iter_files
from connectors.masks import png_to_rle

pytest.importorskip("s3fs")

BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                  b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
                  b"<annotation><object><name>&b;</name></object></annotation>")


def png(width=8, height=6):
    out = io.BytesIO()
    Image.new("RGB", (width, height), (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


def read(uri, storage_options=None, fmt="auto", allowed_paths=()):
    registry = PluginRegistry().load()
    items = list(registry.open_reader(uri, fmt, storage_options, allowed_paths=allowed_paths))
    return ([i for i in items if isinstance(i, Record)],
            [i for i in items if isinstance(i, Problem)])


@pytest.fixture(scope="module")
def bucket(s3_endpoint, compat_dir):
    """A bucket holding Datumaro's COCO and VOC folders and a few small sources."""
    fs = s3_endpoint.filesystem()
    name = s3_endpoint.bucket()
    data = compat_dir / "datumaro"
    fs.put(str(data / "coco_dataset/coco_instances"), f"{name}/coco", recursive=True)
    fs.put(str(data / "voc_dataset/voc_dataset1"), f"{name}/voc", recursive=True)
    fs.pipe(f"{name}/voc/Annotations/laughs.xml", BILLION_LAUGHS)
    fs.pipe(f"{name}/broken/annotations/instances_train.json",
            b'{"categories": [{"id": 1, "name": "thing"}], '
            b'"images": [{"id": 1, "file_name": "x.png", "width": 8, "height": 6}], '
            b'"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]},'
            b' {"id": 2, "image_id": ')
    image = png()
    for key in ("folder/cat/1.png", "folder/dog/2.png", "folder/3.png", "broken/images/x.png"):
        fs.pipe(f"{name}/{key}", image)
    fs.pipe(f"{name}/table/data.csv",
            b"inputid,input,concepts\nr1,../folder/cat/1.png,cat\nr2,some text,note\n")
    buffer = io.BytesIO()
    pq.write_table(pa.table({"input": ["../folder/cat/1.png", "../folder/3.png"],
                             "concepts": [["cat"], ["top"]]}), buffer)
    fs.pipe(f"{name}/pq/part-0.parquet", buffer.getvalue())
    return name


def test_coco_from_s3_with_credentials_from_the_environment(bucket):
    records, problems = read(f"s3://{bucket}/coco")
    assert problems == []
    by_id = {r.id: r for r in records}
    assert set(by_id) == {"train-a.jpg", "val-b.jpg"}
    assert by_id["train-a.jpg"].media.uri == f"s3://{bucket}/coco/images/train/a.jpg"
    assert by_id["train-a.jpg"].media.read_bytes()[:2] == b"\xff\xd8"  # a JPEG, from S3
    mask = next(r for r in by_id["val-b.jpg"].regions if r.kind == "mask")
    assert png_to_rle(mask.mask.data) == ([0, 20, 30], 10, 5)
    assert sum(len(r.regions) for r in records) == 3


def test_coco_single_file_on_s3(bucket):
    records, problems = read(f"s3://{bucket}/coco/annotations/instances_val.json")
    assert problems == [] and [r.media.uri for r in records] == [
        f"s3://{bucket}/coco/images/val/b.jpg"]


def test_broken_coco_json_on_s3_is_reported_and_the_rest_is_read(bucket):
    records, problems = read(f"s3://{bucket}/broken", fmt="coco")
    assert [r.id for r in records] == ["train-x.png"]
    assert len(records[0].regions) == 1
    assert len(problems) == 1
    assert str(problems[0]).startswith(
        f"s3://{bucket}/broken/annotations/instances_train.json: broken JSON")


def test_voc_from_s3_with_hostile_xml(bucket):
    records, problems = read(f"s3://{bucket}/voc")
    by_id = {r.id: r for r in records}
    assert set(by_id) == {"2007_000001", "2007_000002"}
    assert len(by_id["2007_000001"].regions) == 5
    assert by_id["2007_000002"].media.uri == f"s3://{bucket}/voc/JPEGImages/2007_000002.jpg"
    assert [(p.id, p.source) for p in problems] == [
        ("laughs", f"s3://{bucket}/voc/Annotations/laughs.xml")]
    assert "unsafe XML rejected" in problems[0].reason


def test_csv_folder_and_parquet_from_s3(bucket):
    records, problems = read(f"s3://{bucket}/folder")
    assert problems == []
    assert {r.media.uri: [c.id for c in r.concepts] for r in records} == {
        f"s3://{bucket}/folder/cat/1.png": ["cat"], f"s3://{bucket}/folder/dog/2.png": ["dog"],
        f"s3://{bucket}/folder/3.png": []}
    # The table names ../folder/…: outside its own folder, so it must be allowed.
    records, problems = read(f"s3://{bucket}/table/data.csv",
                             allowed_paths=[f"s3://{bucket}/folder"])
    assert problems == []
    assert {r.id: (r.media.uri or r.media.text) for r in records} == {
        "r1": f"s3://{bucket}/folder/cat/1.png", "r2": "some text"}
    records, problems = read(f"s3://{bucket}/pq", fmt="parquet",
                             allowed_paths=[f"s3://{bucket}/folder"])
    assert problems == [] and len(records) == 2
    assert sorted(c.id for r in records for c in r.concepts) == ["cat", "top"]
    assert all(r.media.read_bytes() == png() for r in records)


def test_storage_options_instead_of_the_environment(bucket, s3_endpoint, monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    secret = "a-secret-that-must-not-show"
    options = dict(s3_endpoint.storage_options, secret=s3_endpoint.secret_key,
                   skip_instance_cache=True)
    records, problems = read(f"s3://{bucket}/coco", options)
    assert problems == [] and len(records) == 2
    assert records[0].media.read_bytes()[:2] == b"\xff\xd8"
    # moto accepts any secret: read with a recognisable one and look for it everywhere
    options["secret"] = secret
    reader = PluginRegistry().load().open_reader(f"s3://{bucket}/voc", "voc", options)
    items = list(reader)
    assert len(items) == 3  # two records and the hostile file's problem
    assert secret not in repr(reader)
    assert all(secret not in repr(i) and secret not in str(i) for i in items)
    assert items[0].media.storage_options["secret"] == secret  # kept for reading media


def test_listing_is_paged_and_lazy(bucket, s3_endpoint, monkeypatch):
    fs = s3_endpoint.filesystem()
    folder = f"{bucket}/many"
    fs.pipe({f"{folder}/{n:04d}.xml": b"<a/>" for n in range(230)} |
            {f"{folder}/readme.txt": b"x", f"{folder}/sub/inner.xml": b"<a/>"})
    monkeypatch.setattr(listing, "PAGE", 50)
    files = iter_files(fs, folder, (".xml",))
    first = next(files)
    assert first == f"{folder}/0000.xml"
    rest = list(files)
    assert len(rest) == 229 and f"{folder}/sub/inner.xml" not in rest
    # fs.ls would have cached the whole listing; the paged iteration never builds one
    assert folder not in fs.dircache


def test_detection_over_s3(bucket):
    registry = PluginRegistry().load()
    assert registry.detect_format(f"s3://{bucket}/coco") == "coco"
    assert registry.detect_format(f"s3://{bucket}/voc") == "voc"
    assert registry.detect_format(f"s3://{bucket}/coco/annotations/instances_train.json") == "coco"
    info = json.dumps(sorted(registry.connectors))
    assert "coco" in info and "voc" in info
