"""The conformance kit: every built-in connector and exporter passes it, and it fails on
deliberately broken readers (unstable ids, exceptions on bad rows, eager reading, a lying
count, media outside the source) and writers whose output does not read back."""

from __future__ import annotations

import csv
import json
import os
import uuid
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clarifai_connect import Concept, Media, Problem, Reader, Record, Writer
from clarifai_connect.plugins import get_registry
from clarifai_connect.testing import ConformanceError, check_reader, check_writer

from . import layouts
from .sync_support import class_folders, coco_file, png


def _connector(name: str) -> type[Reader]:
    return get_registry().connector(name).cls


# -- the built-in readers ----------------------------------------------------------------

def _images(root, n: int) -> list[str]:
    (root / "img").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / "img" / f"{i}.png").write_bytes(png(i))
    return [f"img/{i}.png" for i in range(n)]


def test_csv_reader_conforms(tmp_path):
    paths = _images(tmp_path, 6)
    with open(tmp_path / "data.csv", "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["input", "concepts"])
        out.writerows([p, "cat" if i % 2 else "dog"] for i, p in enumerate(paths))
        out.writerow(["img/missing.png", "cat"])  # a missing file: a Problem
        out.writerow(["img/0.png", "cat", "extra"])  # a broken row: a Problem
    result = check_reader(_connector("csv"), str(tmp_path / "data.csv"), expect_problems=2)
    # One record built (and its fingerprint completed by a copy) before it is yielded.
    assert len(result.records) == 6 and result.built_before_first <= 2
    assert result.checked == ["problems-not-exceptions", "stable-ids", "laziness", "count",
                              "media-inside-source"]


def test_folder_reader_conforms(tmp_path):
    class_folders(tmp_path / "pets", {"cat": 4, "dog": 4})
    (tmp_path / "pets" / "dog" / "empty.png").write_bytes(b"")
    result = check_reader(_connector("folder"), str(tmp_path / "pets"), expect_problems=1)
    assert len(result.records) == 8 and result.built_before_first < 8


def test_parquet_reader_conforms(tmp_path):
    paths = _images(tmp_path, 6)
    pq.write_table(pa.table({"input": [*paths, ""], "concepts": ["a"] * 7}),
                   tmp_path / "t.parquet")
    result = check_reader(_connector("parquet"), str(tmp_path / "t.parquet"), expect_problems=1,
                          batch_size=2)
    assert result.count == 7 and len(result.records) == 6


def test_coco_reader_conforms(tmp_path):
    path = coco_file(tmp_path / "coco", images=6)
    doc = json.loads(path.read_text())
    doc["annotations"].append({"id": 999, "image_id": 1, "category_id": 77, "bbox": [0, 0, 1, 1]})
    path.write_text(json.dumps(doc))
    result = check_reader(_connector("coco"), str(path))
    assert len(result.records) == 6


def test_voc_reader_conforms(tmp_path):
    for folder in ("Annotations", "JPEGImages"):
        (tmp_path / folder).mkdir()
    for i in range(4):
        (tmp_path / f"JPEGImages/{i}.png").write_bytes(png(i, size=20))
        (tmp_path / f"Annotations/{i}.xml").write_text(
            f"<annotation><filename>{i}.png</filename><size><width>20</width><height>20"
            "</height></size><object><name>dog</name><bndbox><xmin>1</xmin><ymin>2</ymin>"
            "<xmax>10</xmax><ymax>12</ymax></bndbox></object></annotation>")
    (tmp_path / "Annotations/broken.xml").write_text("<annotation><filename>")
    result = check_reader(_connector("voc"), str(tmp_path), expect_problems=1)
    assert len(result.records) == 4


def test_yolo_reader_conforms(tmp_path):
    root = layouts.ultralytics_detect(tmp_path / "coco8")
    (root / "README.md").write_text("not an item")  # a Notice (ignored), not an item
    result = check_reader(_connector("yolo"), str(root), expect_problems=0)
    assert len(result.records) == 5 and [n.kind for n in result.notices] == ["ignored"]


# -- the built-in writers ----------------------------------------------------------------

@pytest.mark.parametrize("name, target, compare", [
    ("coco", "out", ("media", "concepts", "regions")),
    ("voc", "out", ("media", "concepts", "regions")),
    ("csv", "out/inputs.csv", ("media", "concepts")),
    ("parquet", "out/data.parquet", ("media", "concepts")),
    ("folder", "out", ("media", "concepts")),
    ("yolo", "out", ("media", "regions")),
])
def test_built_in_writers_read_back(tmp_path, name, target, compare):
    writer = get_registry().exporter(name).cls
    result = check_writer(writer, str(tmp_path / target), compare=compare)
    assert len(result.read_back) == len(result.written) == 4
    assert result.checked == ["writes", *compare]


# -- deliberately broken readers ---------------------------------------------------------

class LinesReader(Reader):
    """A good reader: a text file of ``text<TAB>label`` lines; a line without a tab is bad."""

    name = "lines"

    def __iter__(self) -> Iterator[Record | Problem]:
        with open(self.uri, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                yield self.item(number, line.rstrip("\n"))

    def item(self, number: int, line: str) -> Record | Problem:
        text, tab, label = line.partition("\t")
        if not tab:
            return Problem(f"{self.uri}:{number}", "no tab between the text and its label")
        return Record(id=self.id_of(number), media=self.media_of(text),
                      concepts=(Concept.named(label),), source=f"{self.uri}:{number}")

    def id_of(self, number: int) -> str:
        return f"line-{number}"

    def media_of(self, text: str) -> Media:
        return Media(kind="text", text=text)

    def count(self) -> int | None:
        with open(self.uri, encoding="utf-8") as handle:
            return sum(1 for _ in handle)


class RandomIds(LinesReader):
    def id_of(self, number: int) -> str:
        return uuid.uuid4().hex


class RaisesOnBadRows(LinesReader):
    def item(self, number: int, line: str) -> Record | Problem:
        if "\t" not in line:
            raise ValueError(f"line {number} has no tab")
        return super().item(number, line)


class Eager(LinesReader):
    def __iter__(self) -> Iterator[Record | Problem]:
        items = list(super().__iter__())  # the whole source before the first record
        yield from items


class LyingCount(LinesReader):
    def count(self) -> int | None:
        return 1000


class EscapingMedia(LinesReader):
    def media_of(self, text: str) -> Media:
        inside = os.path.join(os.path.dirname(self.uri), text + ".png")
        return Media(kind="image", uri="/etc/hostname" if text == "two" else inside)


class ReadsAsItGoesWithoutRecords(LinesReader):
    def __iter__(self) -> Iterator[Record | Problem]:
        yield "not an item"
        yield from super().__iter__()


@pytest.fixture
def lines(tmp_path) -> str:
    path = tmp_path / "data.lines"
    path.write_text("one\ta\ntwo\tb\nbroken line\nthree\ta\n")
    return str(path)


def test_a_good_reader_passes(lines):
    result = check_reader(LinesReader, lines, expect_problems=1)
    assert (len(result.records), result.count, result.built_before_first) == (3, 4, 1)


@pytest.mark.parametrize("reader, rule", [
    (RandomIds, "stable ids: a second read gave other ids"),
    (RaisesOnBadRows, "problems, not exceptions: reading raised ValueError: line 3 has no "
                      "tab after 2 item(s)"),
    (Eager, "laziness: all 3 records were built before the first item"),
    (LyingCount, "count: count() says 1000, the reader yielded 4 item(s)"),
    (EscapingMedia, "media inside the source: 1 reference(s) leave"),
    (ReadsAsItGoesWithoutRecords, "items: item 0 is a str, not a Record, a Problem or a Notice"),
])
def test_broken_readers_fail_naming_the_rule(lines, reader, rule):
    with pytest.raises(ConformanceError) as caught:
        check_reader(reader, lines)
    assert rule in str(caught.value)
    assert caught.value.subject.startswith(reader.__name__)


def test_expected_problems_and_tiny_sources_are_checked(lines, tmp_path):
    with pytest.raises(ConformanceError, match=r"expected 0 Problem\(s\), got 1"):
        check_reader(LinesReader, lines, expect_problems=0)
    (tmp_path / "one.lines").write_text("only\ta\n")
    with pytest.raises(ConformanceError, match="at least 2 items"):
        check_reader(LinesReader, str(tmp_path / "one.lines"))


class LossyWriter(Writer):
    """Writes the lines format but forgets the labels (every line gets 'x')."""

    name = "lines"

    def __init__(self, uri, *, storage_options=None) -> None:
        super().__init__(uri, storage_options=storage_options)
        self._handle = open(uri, "w", encoding="utf-8")

    def write(self, record: Record) -> None:
        self._handle.write(f"{record.media.read_text()}\tx\n")

    def close(self) -> None:
        self._handle.close()


def test_a_writer_whose_output_reads_back_differently_fails(tmp_path):
    records = [Record(id=f"r{i}", media=Media(kind="text", text=f"t{i}"),
                      concepts=(Concept.named("a" if i else "b"),)) for i in range(3)]
    out = str(tmp_path / "out.lines")
    with pytest.raises(ConformanceError, match="the concepts differ") as caught:
        check_writer(LossyWriter, out, reader=LinesReader, records=records)
    assert "('a',)" in str(caught.value) and "('x',)" in str(caught.value)
    # The media survive: only the broken rule is named.
    assert "media differ" not in str(caught.value)
