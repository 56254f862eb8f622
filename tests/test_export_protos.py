"""Input and Annotation protos → Records: labels merged from the input and its annotations,
every region kind, numbers as they were given, the key only on hosted media."""

from __future__ import annotations

import re

import pytest
from clarifai_grpc.grpc.api import resources_pb2 as pb
from google.protobuf.struct_pb2 import Struct

from clarifai_connect.client.records import record_from_input, struct_to_dict
from clarifai_connect.records import Box, GeoPoint, Point, RecordError

KEY = {"Authorization": "Key secret"}


def _region(region_id: str, concept: str, **info) -> pb.Region:
    return pb.Region(id=region_id, region_info=pb.RegionInfo(**info),
                     data=pb.Data(concepts=[pb.Concept(id=concept, name=concept.upper(),
                                                       value=1)]))


def _input() -> pb.Input:
    metadata = Struct()
    metadata.update({"coco": {"image_id": 5, "width": 10, "ratio": 0.5, "ids": [1, 2]}})
    return pb.Input(id="in-1", dataset_ids=["ds"], data=pb.Data(
        image=pb.Image(url="https://example.com/a.jpg",
                       hosted=pb.HostedURL(prefix="http://127.0.0.1:1/media", suffix="abc")),
        concepts=[pb.Concept(id="cat", name="Cat", value=1),
                  pb.Concept(id="dog", name="Dog", value=0)],
        metadata=metadata,
        geo=pb.Geo(geo_point=pb.GeoPoint(longitude=-122.4, latitude=37.8))))


def test_input_and_annotations_become_one_record():
    box = _region("r1", "cat", bounding_box=pb.BoundingBox(top_row=0.1, left_col=0.2,
                                                            bottom_row=0.5, right_col=1.0000001))
    polygon = _region("r2", "dog", polygon=pb.Polygon(points=[
        pb.Point(row=0, col=0), pb.Point(row=0, col=1), pb.Point(row=1, col=1)]))
    point = _region("r3", "nose", point=pb.Point(row=0.25, col=0.75))
    mask = _region("r4", "cat", mask=pb.Mask(image=pb.Image(
        hosted=pb.HostedURL(prefix="http://127.0.0.1:1/media", suffix="mask"))))
    span = _region("r5", "word", span=pb.Span(char_start=1, char_end=3))
    annotations = [
        pb.Annotation(id="a-input", input_id="in-1",
                      data=pb.Data(concepts=[pb.Concept(id="cat", name="Cat", value=1)])),
        pb.Annotation(id="a1", input_id="in-1", data=pb.Data(regions=[box, polygon])),
        pb.Annotation(id="a2", input_id="in-1", data=pb.Data(regions=[box, point, mask, span])),
        pb.Annotation(id="a3", input_id="in-1", data=pb.Data(regions=[pb.Region(
            region_info=pb.RegionInfo(point=pb.Point(row=0.5, col=0.5)))])),
    ]
    notes: list[str] = []
    record = record_from_input(_input(), annotations, headers=KEY, notes=notes)
    assert [(c.id, c.name, c.value) for c in record.concepts] == [("cat", "Cat", 1.0),
                                                                   ("dog", "Dog", 0.0)]
    assert [r.id for r in record.regions] == ["r1", "r2", "r3", "r4", "a3"]  # r1 once
    assert record.regions[0].box == Box(0.1, 0.2, 0.5, 1.0)  # float noise clamped
    assert record.regions[1].polygon[2] == Point(1.0, 1.0)
    assert record.regions[2].point == Point(0.25, 0.75)
    assert record.regions[3].concepts[0].name == "CAT"
    assert record.regions[3].mask.uri == "http://127.0.0.1:1/media/orig/mask"
    assert record.regions[3].mask.storage_options == {"headers": KEY}
    # Hosted media win over the original URL, and only they carry the key.
    assert record.media.uri == "http://127.0.0.1:1/media/orig/abc"
    assert record.media.storage_options == {"headers": KEY}
    assert "secret" not in repr(record)
    assert record.metadata == {"coco": {"image_id": 5, "width": 10, "ratio": 0.5,
                                        "ids": [1, 2]}}
    assert isinstance(record.metadata["coco"]["image_id"], int)
    assert record.geo == GeoPoint(-122.4, 37.8)  # float32 on the wire, given values back
    assert record.dataset_ids == ("ds",)
    assert notes == ["1 region(s) of a kind other than box, polygon, mask or point "
                     "(text spans, tokens) not read"]


def test_media_forms():
    text = pb.Input(id="t", data=pb.Data(text=pb.Text(raw="hello")))
    assert record_from_input(text).media.text == "hello"
    url = pb.Input(id="u", data=pb.Data(image=pb.Image(url="https://example.com/x.png")))
    media = record_from_input(url, headers=KEY).media
    assert media.uri == "https://example.com/x.png" and media.storage_options is None
    inline = pb.Input(id="b", data=pb.Data(image=pb.Image(base64=b"\x89PNG")))
    assert record_from_input(inline).media.data == b"\x89PNG"
    with pytest.raises(RecordError, match="input 'none': has no media"):
        record_from_input(pb.Input(id="none"))


def test_struct_to_dict_keeps_big_and_fractional_numbers():
    struct = Struct()
    struct.update({"a": 3, "b": 2.5, "c": 2 ** 60, "d": None, "e": {"f": [1, 1.5]}})
    assert struct_to_dict(struct) == {"a": 3, "b": 2.5, "c": float(2 ** 60), "d": None,
                                      "e": {"f": [1, 1.5]}}
    assert struct_to_dict(Struct()) == {}


@pytest.mark.parametrize("item, message", [
    (pb.Input(id="../up", data=pb.Data(image=pb.Image(url="https://x/a.jpg"))),
     "input '../up': input id '../up' has invalid characters"),
    (pb.Input(id="a", data=pb.Data(image=pb.Image(url="https://x/a.jpg"),
                                   concepts=[pb.Concept(id="../c", value=1)])),
     "concept id '../c'"),
    (pb.Input(id="a", dataset_ids=["no way"], data=pb.Data(image=pb.Image(url="https://x/a"))),
     "dataset id 'no way'"),
])
def test_hostile_inputs_are_refused(item, message):
    with pytest.raises(RecordError, match=re.escape(message)):
        record_from_input(item)


def test_hostile_regions_are_left_out_with_a_note():
    bad = [_region("upside", "cat", bounding_box=pb.BoundingBox(
               top_row=0.9, left_col=0.1, bottom_row=0.1, right_col=0.5)),
           _region("outside", "cat", point=pb.Point(row=1.5, col=0.5)),
           _region("badconcept", "a b", point=pb.Point(row=0.5, col=0.5))]
    good = _region("fine", "cat", point=pb.Point(row=0.5, col=0.5))
    notes: list[str] = []
    record = record_from_input(_input(), [pb.Annotation(
        id="a1", input_id="in-1", data=pb.Data(regions=[*bad, good]))], notes=notes)
    assert [r.id for r in record.regions] == ["fine"]
    assert [n.split(":")[0] for n in notes] == [f"region '{r.id}' not read" for r in bad]
    assert "below bottom_row" in notes[0] and "outside 0..1" in notes[1]
