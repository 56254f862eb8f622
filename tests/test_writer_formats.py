"""The csv, parquet and folder writers produce what our own readers read back, name what
their format cannot hold, and report files they could not write; the coco writer streams
its arrays through disk."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from PIL import Image

from clarifai_connect.exports import ExportError
from clarifai_connect.records import Box, Concept, GeoPoint, Media, Point, Record, Region
from connectors.coco_writer import CocoWriter
from connectors.csv_writer import CsvWriter
from connectors.folder_writer import FolderWriter
from connectors.parquet_writer import ParquetWriter

from .export_support import read_all


def _png(n: int, size: tuple[int, int] = (6, 4)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (n * 37 % 256, n, 9)).save(out, format="PNG")
    return out.getvalue()


def _records() -> list[Record]:
    box = Region(box=Box(0.1, 0.2, 0.5, 0.6), concepts=(Concept.named("cat"),), id="r-box")
    polygon = Region(polygon=(Point(0, 0), Point(0, 0.5), Point(0.5, 0.5)),
                     concepts=(Concept.named("dog"),), id="r-poly")
    return [
        Record(id="img-1", media=Media(kind="image", data=_png(1)),
               concepts=(Concept.named("cat"), Concept.named("indoor", value=0.0)),
               regions=(box, polygon), metadata={"k": 1, "nested": {"a": [1, 2]}},
               geo=GeoPoint(-122.5, 37.75)),
        Record(id="img-2", media=Media(kind="image", data=_png(2)),
               concepts=(Concept.named("dog"), Concept.named("golden retriever"))),
        Record(id="note-1", media=Media(kind="text", text="hello, world\nsecond line"),
               concepts=(Concept.named("greeting"),)),
        # Text that the csv reader would take for a path: inline, with a warning.
        Record(id="note-2", media=Media(kind="text", text="photo.jpg")),
    ]


def test_csv_writer_is_read_back_by_the_csv_reader(tmp_path):
    writer = CsvWriter(str(tmp_path / "out" / "data.csv"), workers=2)
    assert writer.write_all(_records()) == 4
    back, problems = read_all(tmp_path / "out" / "data.csv", "csv")
    # The text "photo.jpg" reads as a path in auto mode, as the warning says.
    assert [(p.source.rsplit("/", 1)[-1], "photo.jpg" in p.reason) for p in problems] == \
        [("data.csv:6", True)]
    assert sorted(back) == ["img-1", "img-2", "note-1"]
    raw, _ = read_all(tmp_path / "out" / "data.csv", "csv", csv_type="raw")
    assert raw["note-2"].media.text == "photo.jpg"
    assert back["img-1"].media.read_bytes() == _png(1)
    assert back["img-1"].media.uri.endswith("media/img-1.png")
    assert [c.name for c in back["img-1"].concepts] == ["cat"]
    assert back["img-1"].metadata == {"k": 1, "nested": {"a": [1, 2]}}
    assert back["img-1"].geo == GeoPoint(-122.5, 37.75)
    assert [c.name for c in back["img-2"].concepts] == ["dog", "golden retriever"]
    assert back["note-1"].media.text == "hello, world\nsecond line"
    assert writer.warning_counts == {
        "text that reads as a file path or URL written inline (read it back with "
        "csv_type=raw)": 1,
        "concepts with value 0 not written (the csv layout holds positive labels only)": 1,
        "box/polygon regions not written (the csv layout holds input-level labels only)": 1,
    }


def test_parquet_writer_is_read_back_by_the_parquet_reader(tmp_path):
    records = _records()
    writer = ParquetWriter(str(tmp_path / "out"), batch_size=3)
    assert writer.write_all(records) == 4
    path = tmp_path / "out" / "part-00000.parquet"
    assert pq.ParquetFile(path).metadata.num_row_groups == 2  # rows flushed 3 + 1
    back, problems = read_all(tmp_path / "out", "parquet")
    assert not problems
    for record in records:
        got = back[record.id]
        assert got.media.read_bytes() == record.media.read_bytes()
        assert got.media.kind == record.media.kind
        assert [c.name for c in got.concepts] == [c.name for c in record.concepts
                                                  if c.value > 0]
        assert got.metadata == record.metadata and got.geo == record.geo
    # What the reader's layout has no column for is kept in the regions and labels columns.
    table = pq.read_table(path, columns=["inputid", "regions", "labels"]).to_pylist()
    first = next(row for row in table if row["inputid"] == "img-1")
    regions = json.loads(first["regions"])
    assert [r["kind"] for r in regions] == ["box", "polygon"]
    assert regions[0]["box"] == {"top_row": 0.1, "left_col": 0.2, "bottom_row": 0.5,
                                 "right_col": 0.6}
    assert {"id": "indoor", "name": "indoor", "value": 0.0} in json.loads(first["labels"])
    assert not writer.warning_counts


@pytest.mark.parametrize("multi_label", ["first", "copy"])
def test_folder_writer_is_read_back_by_the_folder_reader(multi_label, tmp_path):
    records = [r for r in _records() if r.media.kind == "image"]
    writer = FolderWriter(str(tmp_path / "out"), multi_label=multi_label)
    writer.write_all(records)
    files = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*")
                   if p.is_file())
    expected = ["cat/img-1.png", "dog/img-2.png"]
    if multi_label == "copy":
        expected.append("golden retriever/img-2.png")
    assert files == sorted(expected)
    # Copies share a file stem: read them by path, one record per copy.
    back, problems = read_all(tmp_path / "out", "folder", labels="leaf",
                              id_from="stem" if multi_label == "first" else "path")
    assert not problems
    if multi_label == "copy":
        assert sorted(c.name for r in back.values() for c in r.concepts) == \
            ["cat", "dog", "golden retriever"]
    else:
        assert {k: [c.name for c in r.concepts] for k, r in back.items()} == \
            {"img-1": ["cat"], "img-2": ["dog"]}
        assert writer.warning_counts["labels after the first not written (one class folder "
                                     "per input; use multi_label=copy to copy it into "
                                     "each)"] == 1
    assert writer.warning_counts["metadata not written (folders hold media and labels "
                                 "only)"] == 1
    assert writer.warning_counts["box/polygon regions not written (folders hold input-level "
                                 "labels only)"] == 1


def test_a_file_that_cannot_be_written_fails_its_record_only(tmp_path):
    out = tmp_path / "out"
    (out / "media" / "img-2.png").mkdir(parents=True)  # a folder where the file should go
    writer = CsvWriter(str(out), workers=2)
    with pytest.raises(ExportError, match="img-2") as caught:
        writer.write_all(_records())
    assert "1 record(s) not written" in str(caught.value)
    assert (out / "media" / "img-1.png").read_bytes() == _png(1)
    with open(out / "inputs.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert [r[0] for r in rows] == ["inputid", "img-1", "img-2", "note-1", "note-2"]


def test_coco_writer_streams_many_images_through_its_spill(tmp_path):
    records = [Record(id=f"img-{n:04d}", media=Media(kind="image", data=_png(n, (5, 5))),
                      regions=(Region(box=Box(0.2, 0.2, 0.8, 0.6),
                                      concepts=(Concept.named(f"c{n % 7}"),)),),
                      concepts=(Concept.named("tagged"),))
               for n in range(2500)]
    writer = CocoWriter(str(tmp_path / "out"), workers=4, spill_dir=str(tmp_path))
    assert writer.write_all(records) == 2500
    data = json.loads((tmp_path / "out" / "annotations" / "instances_default.json").read_text())
    assert len(data["images"]) == 2500
    assert len(data["annotations"]) == 5000  # a box and an image label each
    assert len({a["id"] for a in data["annotations"]}) == 5000
    assert sorted(c["name"] for c in data["categories"]) == sorted(
        [f"c{n}" for n in range(7)] + ["tagged"])
    first = next(a for a in data["annotations"] if "bbox" in a)
    assert first["bbox"] == [1, 1, 2, 3] and first["area"] == 6
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # spill files are gone


def _peak_bytes(writer_cls, out, count: int, tmp_path) -> int:
    import tracemalloc

    def records():
        for n in range(count):
            yield Record(id=f"img-{n:05d}", media=Media(kind="image", data=_png(n % 50, (4, 4))),
                         regions=(Region(box=Box(0.25, 0.25, 0.75, 0.75),
                                         concepts=(Concept.named(f"c{n % 5}"),)),),
                         concepts=(Concept.named("tagged"),),
                         metadata={"note": "x" * 200})

    tracemalloc.start()
    try:
        writer_cls(str(out), workers=2, spill_dir=str(tmp_path)).write_all(records())
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("writer_cls", [CocoWriter, ParquetWriter, CsvWriter])
def test_memory_does_not_grow_with_the_dataset(writer_cls, tmp_path):
    _peak_bytes(writer_cls, tmp_path / "warm-up", 5, tmp_path)  # first imports and caches
    small = _peak_bytes(writer_cls, tmp_path / "small", 250, tmp_path)
    large = _peak_bytes(writer_cls, tmp_path / "large", 2000, tmp_path)
    # Eight times the records, nowhere near eight times the memory: it is bounded by the
    # batch and the write window, not by the dataset.
    assert large < 2 * small + (1 << 20), (small, large)


def _mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> bytes:
    image = Image.new("L", size, 0)
    image.paste(255, box)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_voc_writer_class_masks_of_new_classes_are_read_back(tmp_path):
    from connectors.voc_writer import VocWriter

    size = (8, 6)
    record = Record(
        id="scene", media=Media(kind="image", data=_png(3, size)),
        concepts=(Concept.named("outdoor"), Concept.named("night", value=0.0)),
        regions=(Region(box=Box(0.0, 0.0, 0.5, 0.5), concepts=(Concept.named("widget"),)),
                 Region(mask=_mask(size, (0, 0, 2, 2)), concepts=(Concept.named("widget"),)),
                 Region(mask=_mask(size, (4, 3, 6, 5)), concepts=(Concept.named("widget"),)),
                 Region(mask=_mask(size, (6, 0, 8, 2)), concepts=(Concept.named("dog"),)),
                 Region(point=Point(0.5, 0.5), concepts=(Concept.named("nose"),))))
    writer = VocWriter(str(tmp_path / "voc"), default_split="train")
    writer.write_all([record])
    assert writer.warning_counts == {
        "point regions not written (VOC holds boxes and masks)": 1,
        "masks of the same class merged into one class mask": 1}
    labelmap = (tmp_path / "voc" / "labelmap.txt").read_text().splitlines()
    assert labelmap[1].startswith("background:0,0,0") and labelmap[-1].startswith("widget:")
    back, problems = read_all(tmp_path / "voc", "voc")
    assert not problems
    got = back["scene"]
    assert sorted((c.name, c.value) for c in got.concepts) == [("night", 0.0),
                                                                ("outdoor", 1.0)]
    assert [(r.kind, r.concepts[0].name) for r in got.regions] == \
        [("box", "widget"), ("mask", "dog"), ("mask", "widget")]
    widget = next(r for r in got.regions if r.kind == "mask" and r.concepts[0].name == "widget")
    with Image.open(io.BytesIO(widget.mask.read_bytes())) as image:
        assert image.convert("L").histogram()[255] == 8  # both 2×2 squares, merged
