"""The streaming section reader: the items json.loads sees, whatever the chunking, and
broken text reported at its byte offset."""

from __future__ import annotations

import io
import json
import random

import pytest

from connectors.coco_stream import CocoSyntaxError, SectionReader


def sections(text: str | bytes, chunk: int = 5, wanted=lambda s: True) -> list:
    data = text.encode() if isinstance(text, str) else text
    return list(SectionReader(io.BytesIO(data), chunk=chunk).items(
        ("images", "annotations", "categories"), wanted))


@pytest.mark.parametrize("seed", range(12))
def test_items_equal_json_loads_whatever_the_chunks(seed):
    rng = random.Random(seed)
    doc = {"info": {"nested": [{"a": "é}]\\\""}, [1, [2]]], "x": None}, "licenses": [],
           "images": [{"id": n, "file_name": f"ü{n}.jpg", "width": 1.5e3} for n in range(20)],
           "other": "[{", "annotations": [{"id": n, "bbox": [n, -1e-3, 2, 3], "t": True}
                                          for n in range(30)], "categories": []}
    text = json.dumps(doc, indent=rng.choice([None, 1, "\t"]), ensure_ascii=rng.random() < .5)
    got = sections(text, chunk=rng.randint(1, 64))
    assert got == [(k, item) for k in ("images", "annotations") for item in doc[k]]


def test_byte_order_mark_plain_lists_and_sections_that_are_not_arrays():
    assert sections(b"\xef\xbb\xbf" + b'{"images": [{"id": 1}]}') == [("images", {"id": 1})]
    assert sections('[{"image_id": 1}]') == []
    assert sections('{"images": {"id": 1}, "annotations": 7}') == []


def test_sections_not_wanted_are_skipped():
    text = '{"annotations": [{"id": 1}], "images": [{"id": 2}], "annotations": [{"id": 3}]}'
    assert sections(text, wanted=lambda s: s != "annotations") == [("images", {"id": 2})]


@pytest.mark.parametrize("text, count, at", [
    ('{"images": [{"id": 1}, {"id": 2]', 1, "]"),
    ('{"images": [{"id": 1}] "x": 1}', 1, '"x"'),
    ('{"ü": 1, "images": [{"id": 1}, {"id": NaN}]}', 1, '{"id": N'),  # the item's start
    ('{"images": [{"id": 1}]} extra', 1, "extra"),
    ("\x00 not json", 0, "\x00"),
])
def test_broken_text_names_its_byte_offset(text, count, at):
    where = len(text[:text.index(at)].encode())
    reader = SectionReader(io.BytesIO(text.encode()), chunk=4)
    seen = []
    with pytest.raises(CocoSyntaxError, match=f"at byte {where}$") as caught:
        for item in reader.items():
            seen.append(item)
    assert len(seen) == caught.value.count == count


def test_a_deep_item_is_refused_with_its_bytes():
    item = '{"x": ' + "[" * 600 + "]" * 600 + "}"
    text = '{"annotations": [{"id": 0}, ' + item + "]}"
    with pytest.raises(CocoSyntaxError, match="nested deeper than 512 levels within bytes 28-"):
        sections(text, chunk=1 << 16)
    shallow = '{"x": ' + "[" * 500 + "]" * 500 + "}"
    assert len(sections('{"annotations": [' + shallow + "]}", chunk=1 << 16)) == 1
