"""The parquet connector: bytes and URI media, mappings, filters, hive partitions, bad files."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from clarifai_connect.errors import ConfigError, SourceError
from clarifai_connect.records import Problem, Record
from connectors.parquet import ParquetReader, parse_filter

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20


def read(path: Path, **options) -> list:
    return list(ParquetReader(str(path), **options))


def test_bytes_column_with_lists_structs_and_sniffed_kinds(tmp_path: Path):
    table = pa.table({
        "inputid": ["a", "b", "c", "d"],
        "input": [PNG, JPEG, b"some text", b"\x00\x01\x02"],
        "concepts": [["cat", "cute"], [], None, ["x"]],
        "metadata": [{"w": 1}, {"w": 2}, None, {"w": 4}],
        "geopoints": ["1.5,2.5", None, None, None],
    })
    pq.write_table(table, tmp_path / "t.parquet")
    items = read(tmp_path / "t.parquet")
    got = {i.id: i for i in items if isinstance(i, Record)}
    assert got["a"].media.data == PNG and got["a"].media.kind == "image"
    assert [c.id for c in got["a"].concepts] == ["cat", "cute"] and got["a"].metadata == {"w": 1}
    assert got["a"].geo.longitude == 1.5 and got["a"].source == f"{tmp_path / 't.parquet'} row 0"
    assert got["b"].media.kind == "image" and got["c"].media.kind == "text"
    assert [str(p) for p in items if isinstance(p, Problem)] == [
        f"{tmp_path / 't.parquet'} row 3: cannot tell the media kind of the bytes; set input_type"]
    forced = {i.id: i for i in read(tmp_path / "t.parquet", input_type="image")}
    assert forced["d"].media.kind == "image"


def test_uri_columns_mapping_metadata_columns_and_derived_ids(tmp_path: Path):
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.png").write_bytes(PNG)
    table = pa.table({"path": ["media/a.png", "media/gone.png", "https://h/x.jpg", "words here"],
                      "label": ["cat|dog", "cat", "", "neg"], "score": [0.9, 0.1, 0.5, 0.2],
                      "blob": [b"1", b"2", b"3", b"4"]})
    pq.write_table(table, tmp_path / "t.parquet")
    reader = ParquetReader(str(tmp_path / "t.parquet"),
                           columns={"input": "path", "concepts": "label"},
                           metadata_columns=["score"], label_separator="|")
    assert reader._columns(set(table.column_names)) == ["path", "label", "score"]
    items = list(reader)
    records = [i for i in items if isinstance(i, Record)]
    assert records[0].media.uri == str(tmp_path / "media" / "a.png")
    assert [c.id for c in records[0].concepts] == ["cat", "dog"]
    assert records[0].metadata == {"score": 0.9}
    assert records[1].media.is_http and records[2].media.text == "words here"
    again = read(tmp_path / "t.parquet", columns={"input": "path"})
    assert [r.id for r in records] == [r.id for r in again if isinstance(r, Record)]
    assert [str(p) for p in items if isinstance(p, Problem)] == [
        f"{tmp_path / 't.parquet'} row 1: file not found: {tmp_path / 'media' / 'gone.png'}"]
    with pytest.raises(ConfigError, match="has no column\\(s\\) nope"):
        read(tmp_path / "t.parquet", columns={"input": "path"}, metadata_columns=["nope"])
    with pytest.raises(ConfigError, match="no 'input' column"):
        read(tmp_path / "t.parquet")
    bytes_meta = read(tmp_path / "t.parquet", columns={"input": "path"},
                      metadata_columns=["blob"], check_files=False)
    # Every one of the four rows fails, each at its own row.
    assert [(p.source, "bytes value cannot go into metadata" in p.reason)
            for p in bytes_meta if isinstance(p, Problem)] == [
        (f"{tmp_path / 't.parquet'} row {n}", True) for n in range(4)]
    assert len(bytes_meta) == 4


def test_hive_partitions_filters_batches_and_counts(tmp_path: Path):
    table = pa.table({"input": [f"text number {i}" for i in range(10)],
                      "split": ["train"] * 6 + ["val"] * 4, "n": list(range(10))})
    ds.write_dataset(table, tmp_path / "set", format="parquet", partitioning=["split"],
                     partitioning_flavor="hive")
    (tmp_path / "set" / "_SUCCESS").write_text("")
    everything = read(tmp_path / "set", batch_size=3, metadata_columns=["split"])
    assert len(everything) == 10 and all(isinstance(r, Record) for r in everything)
    assert {r.metadata["split"] for r in everything} == {"train", "val"}
    assert ParquetReader(str(tmp_path / "set")).count() == 10
    splits = read(tmp_path / "set", columns={"dataset": "split"})
    assert sorted({r.dataset_ids for r in splits}) == [("train",), ("val",)]
    val = read(tmp_path / "set", filter="split == 'val' and n >= 8",
               metadata_columns=["split", "n"])
    assert sorted(r.metadata["n"] for r in val) == [8, 9]
    assert "split=val" in val[0].source and "filtered row 0" in val[0].source
    dnf = read(tmp_path / "set", filter=[("split", "=", "train"), ("n", "<", 2)])
    assert [r.media.text for r in dnf] == ["text number 0", "text number 1"]
    assert ParquetReader(str(tmp_path / "set"), filter="n > 1").count() is None
    with pytest.raises(ConfigError, match="cannot read the filter clause"):
        parse_filter("split is val")


def test_unreadable_files_are_problems_and_the_rest_is_read(tmp_path: Path):
    (tmp_path / "set").mkdir()
    pq.write_table(pa.table({"input": ["good row"]}), tmp_path / "set" / "a.parquet")
    (tmp_path / "set" / "b.parquet").write_bytes(b"PAR1 but not really")
    items = read(tmp_path / "set")
    assert [str(i) for i in items if isinstance(i, Problem)] == [
        f"{tmp_path / 'set' / 'b.parquet'}: not a readable Parquet file"]
    assert [r.media.text for r in items if isinstance(r, Record)] == ["good row"]
    with pytest.raises(SourceError, match="does not exist"):
        read(tmp_path / "absent.parquet")
