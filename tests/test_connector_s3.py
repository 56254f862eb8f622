"""Every built-in connector over S3: a real S3 API (moto in server mode) through fsspec/s3fs."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clarifai_connect.errors import SourceError
from clarifai_connect.plugins import PluginRegistry
from clarifai_connect.records import Problem, Record
from clarifai_connect.validation import validate_source

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
BUCKET = "connector-data"
SECRET = "moto-secret-never-shown"


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on loopback with one bucket; yields fsspec storage options."""
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {"key": "testing", "secret": SECRET,
               # No region: s3fs would send it as a LocationConstraint, invalid for us-east-1.
               "client_kwargs": {"endpoint_url": f"http://{host}:{port}"}}
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    fs.mkdir(BUCKET)
    files = {
        "imgs/cat/1.png": PNG, "imgs/cat/2.png": PNG, "imgs/dog/3.png": PNG,
        "imgs/top.png": PNG, "imgs/dog/notes.txt": b"a dog note",
        "imgs/dog/empty.png": b"",
        "table/data.csv": (b"inputid,input,concepts\n"
                           b"c1,../imgs/cat/1.png,cat\n"
                           b"c2,../imgs/cat/missing.png,cat\n"
                           b"c3,plain text row,note\n"),
    }
    for key, data in files.items():
        fs.pipe(f"{BUCKET}/{key}", data)
    buffer = io.BytesIO()
    pq.write_table(pa.table({"input": ["top.png", "dog/3.png"],
                             "concepts": [["top"], ["dog"]]}), buffer)
    fs.pipe(f"{BUCKET}/pq/year=2024/part-0.parquet", buffer.getvalue())
    yield options
    server.stop()


def test_folder_over_s3(s3):
    registry = PluginRegistry().load()
    uri = f"s3://{BUCKET}/imgs"
    assert registry.detect_format(uri, s3) == "folder"
    items = list(registry.open_reader(uri, "auto", s3))
    records = {i.media.uri: i for i in items if isinstance(i, Record)}
    assert set(records) == {f"s3://{BUCKET}/imgs/{k}" for k in
                            ("cat/1.png", "cat/2.png", "dog/3.png", "top.png", "dog/notes.txt")}
    assert [c.id for c in records[f"s3://{BUCKET}/imgs/cat/1.png"].concepts] == ["cat"]
    assert records[f"s3://{BUCKET}/imgs/dog/notes.txt"].media.read_text() == "a dog note"
    assert records[f"s3://{BUCKET}/imgs/top.png"].media.read_bytes() == PNG
    assert [str(p) for p in items if isinstance(p, Problem)] == [
        f"s3://{BUCKET}/imgs/dog/empty.png: empty file"]
    assert all(SECRET not in repr(i) for i in items)


def test_csv_over_s3_resolves_relative_paths_in_the_bucket(s3):
    registry = PluginRegistry().load()
    # ../imgs is outside the table's folder: refused unless that folder is allowed.
    refused = list(registry.open_reader(f"s3://{BUCKET}/table/data.csv", "auto", s3))
    assert [i.reason for i in refused if isinstance(i, Problem)] == [
        "media reference '../imgs/cat/1.png' is a path outside the source "
        f"(s3://{BUCKET}/table); allow its folder with --allow-path DIR if it is meant",
        "media reference '../imgs/cat/missing.png' is a path outside the source "
        f"(s3://{BUCKET}/table); allow its folder with --allow-path DIR if it is meant"]
    items = list(registry.open_reader(f"s3://{BUCKET}/table/data.csv", "auto", s3,
                                      allowed_paths=[f"s3://{BUCKET}/imgs"]))
    got = {i.id: i for i in items if isinstance(i, Record)}
    assert got["c1"].media.uri == f"s3://{BUCKET}/imgs/cat/1.png"
    assert got["c1"].media.read_bytes() == PNG and got["c3"].media.text == "plain text row"
    assert [str(p) for p in items if isinstance(p, Problem)] == [
        f"s3://{BUCKET}/table/data.csv:3: file not found: s3://{BUCKET}/imgs/cat/missing.png"]


def test_parquet_over_s3_with_partitions(s3):
    registry = PluginRegistry().load()
    uri = f"s3://{BUCKET}/pq"
    assert registry.detect_format(uri, s3) == "parquet"
    reader = registry.open_reader(uri, "parquet", s3, media_root="../imgs",
                                  metadata_columns=["year"])
    items = list(reader)
    assert not [str(p) for p in items if isinstance(p, Problem)]
    assert [i.media.uri for i in items] == [f"s3://{BUCKET}/imgs/top.png",
                                            f"s3://{BUCKET}/imgs/dog/3.png"]
    assert items[0].metadata == {"year": 2024} and items[1].concepts[0].id == "dog"
    assert "year=2024/part-0.parquet row 1" in items[1].source


def test_validate_over_s3_checks_media_and_missing_sources(s3):
    seen: list[Problem] = []
    report = validate_source(f"s3://{BUCKET}/imgs", options={"labels": "leaf"},
                             storage_options=s3, media=True, on_problem=seen.append)
    assert report.records == 5 and report.problems == 1 and seen[0].reason == "empty file"
    assert set(report.concepts) == {"cat", "dog"}
    with pytest.raises(SourceError, match="does not exist"):
        list(PluginRegistry().load().open_reader(f"s3://{BUCKET}/nothing-here.csv", "csv", s3))


def test_cli_validate_with_storage_options_never_prints_the_secret(s3):
    from click.testing import CliRunner

    from clarifai_connect.cli import cli

    endpoint = s3["client_kwargs"]["endpoint_url"]
    args = ["validate", f"s3://{BUCKET}/table/data.csv", "-s", "key=testing",
            "-s", f"secret={SECRET}", "-s", f"client_kwargs.endpoint_url={endpoint}",
            "--allow-path", f"s3://{BUCKET}/imgs"]  # the CSV's images sit beside its folder
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1  # the CSV names a missing file
    assert f"problem: s3://{BUCKET}/table/data.csv:3: file not found" in result.output
    assert "records:  2 (1 image, 1 text)" in result.output
    assert SECRET not in result.output
