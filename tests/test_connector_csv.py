"""The csv connector: the reference layout, column mappings, broken rows, compat files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from clarifai_connect.errors import ConfigError, SourceError
from clarifai_connect.records import Problem, Record
from connectors.csv import CsvReader

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def read(path: Path, **options) -> list:
    return list(CsvReader(str(path), **options))


def records(items: list) -> dict[str, Record]:
    return {i.id: i for i in items if isinstance(i, Record)}


def problems(items: list) -> list[str]:
    return [str(i) for i in items if isinstance(i, Problem)]


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(PNG)
    (tmp_path / "img" / "b.png").write_bytes(PNG)
    return tmp_path


def test_reference_layout_with_text_urls_and_paths(media_dir: Path):
    csv = media_dir / "data.csv"
    csv.write_text(
        "inputid,input,concepts,metadata,geopoints\n"
        't1,"A sentence, with a comma.","pos,news","{""lang"": ""en""}",\n'
        "u1,https://example.com/cat.jpg,cat,{'src': 'web'},\"-122.4,37.8\"\n"
        "p1,img/a.png,,,\n"
        ",img/b.png,dog,,\n"
        ",Just text without an id,,,\n")
    items = read(csv)
    assert problems(items) == []
    got = records(items)
    assert got["t1"].media.kind == "text" and got["t1"].media.text == "A sentence, with a comma."
    assert [c.id for c in got["t1"].concepts] == ["pos", "news"]
    assert got["t1"].metadata == {"lang": "en"} and got["t1"].source == f"{csv}:2"
    assert got["u1"].media.uri == "https://example.com/cat.jpg" and got["u1"].media.is_http
    assert got["u1"].metadata == {"src": "web"}  # the SDK's single-quoted style
    assert (got["u1"].geo.longitude, got["u1"].geo.latitude) == (-122.4, 37.8)
    assert got["p1"].media.uri == str(media_dir / "img" / "a.png")
    assert got["p1"].media.read_bytes() == PNG and got["p1"].concepts == ()
    # Rows without an id get one derived from what they point at, the same on every read.
    derived = [r for r in items if isinstance(r, Record) and r.source.endswith((":5", ":6"))]
    assert [r.id for r in derived] == [r.id for r in read(csv) if r.source.endswith((":5", ":6"))]
    assert derived[0].id.startswith("img_b.png-") and derived[1].id.startswith("text-")


def test_broken_rows_are_problems_with_their_line_and_the_rest_goes_on(media_dir: Path):
    csv = media_dir / "data.csv"
    csv.write_text(
        "inputid,input,concepts,metadata,geopoints\n"
        "ok1,hello,,,\n"
        "bad id,hello,,,\n"
        "m,hello,,{not json},\n"
        'ml,"line one\nline two",,,\n'          # a quoted newline: one row over two lines
        "g,hello,,,\"1,2,3\"\n"
        "f,img/missing.png,,,\n"
        "e,,x,,\n"
        "n,hello,,[1],\n"
        "x,hello,,,,extra\n"
        "\n"
        "ok2,img/a.png,\"cat,cat\",,\n")
    items = read(csv)
    assert problems(items) == [
        f"{csv}:3: input id 'bad id' has invalid characters: use letters, digits, '_', '-' "
        "and '.', not starting with '-' or '.'",
        f"{csv}:4: metadata '{{not json}}' is not valid JSON",
        f"{csv}:7: geopoints '1,2,3' should be 'longitude,latitude'",
        f"{csv}:8: file not found: {media_dir / 'img' / 'missing.png'}",
        f"{csv}:9: empty 'input' column",
        f"{csv}:10: metadata '[1]' is not a JSON object",
        f"{csv}:11: has 6 fields where the header has 5 (check quoting)",
    ]
    got = records(items)
    assert set(got) == {"ok1", "ml", "ok2"}
    assert got["ml"].media.text == "line one\nline two" and got["ml"].source == f"{csv}:5"
    assert [c.id for c in got["ok2"].concepts] == ["cat"]  # a repeated label counts once
    assert got["ok2"].source == f"{csv}:13"


def test_invalid_utf8_rows_are_problems(tmp_path: Path):
    csv = tmp_path / "latin.csv"
    csv.write_bytes(b"inputid,input\na,caf\xe9\nb,fine\n")
    items = read(csv)
    assert problems(items) == [f"{csv}:2: is not valid utf-8 text"]
    assert list(records(items)) == ["b"]
    assert records(read(csv, encoding="latin-1"))["a"].media.text == "café"


def test_unknown_columns_fail_fast_unless_mapped_or_kept(tmp_path: Path):
    csv = tmp_path / "d.csv"
    csv.write_text("input,concepts,score\nhello,x,0.5\n")
    with pytest.raises(ConfigError, match="column\\(s\\) score outside the layout"):
        read(csv)
    assert records(read(csv, extra_columns="metadata"))
    (record,) = records(read(csv, extra_columns="metadata")).values()
    assert record.metadata == {"score": "0.5"}
    (ignored,) = records(read(csv, extra_columns="ignore")).values()
    assert ignored.metadata == {}
    with pytest.raises(ConfigError, match="unknown field\\(s\\) label"):
        CsvReader(str(csv), columns={"label": "concepts"})
    with pytest.raises(ConfigError, match="duplicate columns: input"):
        (tmp_path / "dup.csv").write_text("input,input\na,b\n")
        read(tmp_path / "dup.csv")
    with pytest.raises(SourceError, match="needs a header row"):
        (tmp_path / "empty.csv").write_text("")
        read(tmp_path / "empty.csv")
    with pytest.raises(SourceError, match="does not exist"):
        read(tmp_path / "absent.csv")


def test_input_type_and_csv_type_follow_the_sdk(media_dir: Path):
    csv = media_dir / "d.csv"
    csv.write_text("input\nimg/a.png\nhttps://x.org/v\n")
    items = read(csv, input_type="image")
    got = [i for i in items if isinstance(i, Record)]
    assert [r.media.kind for r in got] == ["image", "image"]
    assert got[1].media.uri == "https://x.org/v"
    raw = read(csv, csv_type="raw")  # every cell is text, even when it looks like a path
    assert [r.media.text for r in raw] == ["img/a.png", "https://x.org/v"]
    odd = read(csv)  # the URL has no extension: its kind cannot be guessed
    assert problems(odd) == [f"{csv}:3: cannot tell the media kind of 'https://x.org/v' "
                             "from its extension; set input_type"]
    with pytest.raises(ConfigError, match="input_type 'pic'"):
        CsvReader(str(csv), input_type="pic")


def test_tsv_and_compressed_files(tmp_path: Path):
    (tmp_path / "d.tsv").write_text("inputid\tinput\tconcepts\na\thello, world\tx,y\n")
    (record,) = read(tmp_path / "d.tsv")
    assert record.media.text == "hello, world" and len(record.concepts) == 2
    with gzip.open(tmp_path / "d.csv.gz", "wt") as handle:
        handle.write("inputid,input\nz,zipped\n")
    (zipped,) = read(tmp_path / "d.csv.gz")
    assert (zipped.id, zipped.media.text) == ("z", "zipped")


def test_fingerprints_change_when_a_referenced_file_changes(media_dir: Path):
    csv = media_dir / "d.csv"
    csv.write_text("inputid,input\na,img/a.png\n")
    before = read(csv)[0].fingerprint
    assert read(csv)[0].fingerprint == before
    (media_dir / "img" / "a.png").write_bytes(PNG + b"more")
    assert read(csv)[0].fingerprint != before


def test_kaggle_layout_from_datumaro(compat_dir: Path):
    root = compat_dir / "datumaro" / "kaggle_dataset" / "image_csv"
    mapping = {"input": "image_name", "concepts": "label_name"}
    with_ext = read(root / "ann.csv", columns=mapping, media_root="images")
    without = read(root / "ann_wo_ext.csv", columns=mapping, media_root="images",
                   media_suffix=".jpg")
    assert problems(with_ext) == [] and problems(without) == []
    labels = {r.id: [c.id for c in r.concepts] for r in with_ext}
    assert labels == {"1.jpg": ["dog"], "2.jpg": ["cat"], "3.jpg": ["dog"], "4.jpg": ["cat"],
                      "5.jpg": ["cat"]}
    assert {r.id: [c.id for c in r.concepts] for r in without} == labels
    assert all(r.media.kind == "image" and r.media.read_bytes()[:3] == b"\xff\xd8\xff"
               for r in with_ext)
    # Without media_root the paths point next to the CSV, where the files are not.
    missing = read(root / "ann.csv", columns=mapping)
    assert len(problems(missing)) == 5 and "file not found" in problems(missing)[0]
