"""VOC ImageSets as people and tools write them (comments, blank lines, CRLF, a BOM, class
lists), and VOC boxes that are repaired or refused."""

from __future__ import annotations

import pytest

from clarifai_connect.records import Notice, Problem, Record
from connectors.voc import VocReader

from . import layouts


def read(root, **options):
    items = list(VocReader(str(root), **options))
    return ({i.id: i for i in items if isinstance(i, Record)},
            [i for i in items if isinstance(i, Problem)],
            [i for i in items if isinstance(i, Notice)])


@pytest.fixture
def voc(tmp_path):
    root = tmp_path / "VOC2012"
    for n, stem in enumerate(("2008_000001", "2008_000002", "2008_000003", "2008_000004")):
        (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        (root / "JPEGImages" / f"{stem}.jpg").write_bytes(layouts.jpeg(40, 30, n))
    (root / "Annotations").mkdir()
    (root / "Annotations/2008_000001.xml").write_text(
        layouts.voc_xml("2008_000001.jpg", [("dog", (1, 1, 10, 10))]))
    (root / "ImageSets/Main").mkdir(parents=True)
    return root


def test_comments_blank_lines_crlf_and_bom(voc):
    (voc / "ImageSets/Main/train.txt").write_bytes(
        b"\xef\xbb\xbf# images for training\r\n2008_000001\r\n\r\n   \r\n"
        b"2008_000002  # checked by hand\r\n")
    (voc / "ImageSets/Main/val.txt").write_bytes(b"2008_000003\n\n# end\n")
    records, problems, _ = read(voc)
    assert problems == []
    assert {i: r.metadata["voc"]["split"] for i, r in records.items()} == {
        "2008_000001": "train", "2008_000002": "train", "2008_000003": "val"}


def test_class_lists_minus_one_zero_one(voc):
    (voc / "ImageSets/Main/train.txt").write_text("2008_000001\n2008_000002\n")
    # VOC's own layout: "<id> <-1|0|1>" with the value right-aligned, CRLF from Windows
    (voc / "ImageSets/Main/dog_train.txt").write_bytes(
        b"2008_000001  1\r\n2008_000002 -1\r\n2008_000004  0\r\n# a comment\r\n")
    (voc / "ImageSets/Main/cat_train.txt").write_text("2008_000001 -1\n2008_000002  1\n")
    records, problems, _ = read(voc)
    assert problems == []
    # 2008_000004 is named by a class list only: it is in that list's split, with its label
    assert sorted(records) == ["2008_000001", "2008_000002", "2008_000004"]
    labels = {i: sorted((c.id, c.value) for c in r.concepts) for i, r in records.items()}
    assert labels == {"2008_000001": [("cat", 0.0), ("dog", 1.0)],
                      "2008_000002": [("cat", 1.0), ("dog", 0.0)],
                      "2008_000004": [("dog", 1.0)]}
    # 0 is "difficult": present, and said so in the metadata
    assert records["2008_000004"].metadata["voc"]["difficult_labels"] == ["dog"]
    assert records["2008_000004"].metadata["voc"]["split"] == "train"
    # negatives=False: -1 gives no label at all
    records, _, _ = read(voc, negatives=False)
    assert sorted(c.id for c in records["2008_000001"].concepts) == ["dog"]


def test_broken_class_list_lines_are_problems_with_their_line(voc):
    (voc / "ImageSets/Main/dog_train.txt").write_text("2008_000001 1\n2008_000002 yes\n"
                                                      "2008_000003 1 extra\n")
    records, problems, _ = read(voc)
    assert [p.source.rsplit(":", 1)[1] for p in problems] == ["2", "3"]
    assert "2008_000001" in records


def test_boxes_repaired_or_refused(voc):
    (voc / "Annotations/2008_000001.xml").write_text(layouts.voc_xml("2008_000001.jpg", [
        ("swapped", (20, 5, 10, 15)),     # xmin > xmax: the same box, repaired
        ("past", (30, 20, 44, 32)),       # 4 px past the right, 2 below: clipped, repaired
        ("flat", (5, 5, 5, 10)),          # zero width
        ("nan", ("nan", 5, 10, 10)),      # not a number
        ("away", (50, 40, 60, 50)),       # wholly outside a 40×30 image
        ("ok", (1, 1, 40.5, 30.5)),       # half a pixel over: rounding, clamped silently
    ]))
    records, problems, notices = read(voc)
    record = records["2008_000001"]
    boxes = {r.concepts[0].id: r.box for r in record.regions}
    assert sorted(boxes) == ["ok", "past", "swapped"]
    assert (boxes["swapped"].left_col, boxes["swapped"].right_col) == (0.25, 0.5)
    assert (boxes["past"].right_col, boxes["past"].bottom_row) == (1.0, 1.0)
    assert [(n.kind, n.source.rsplit(": ", 1)[1]) for n in notices] == [
        ("repaired", "object 1"), ("repaired", "object 2")]
    assert "negative width normalized" in notices[0].reason
    assert "clipped" in notices[1].reason
    assert [p.source.rsplit(": ", 1)[1] for p in problems] == ["object 3", "object 4",
                                                               "object 5"]
    assert "zero area" in problems[0].reason
    assert "not a finite number" in problems[1].reason
    assert "wholly outside" in problems[2].reason
