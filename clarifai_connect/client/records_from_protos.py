"""Input and Annotation protos → Records: the way back out of the API.

An input's labels live in two places: its own ``data`` (input-level concepts, metadata, and
in export archives every region) and its annotations (one per region, plus the input-level
one mirroring its concepts). :func:`record_from_input` merges both, deduplicating concepts
by id and regions by id, as a dataset-version snapshot does. Media stay lazy: hosted media
become URIs whose ``storage_options`` carry the key header (fsspec's http filesystem and
the export runner send it; it never shows in reprs), third-party URLs go without it.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2
from google.protobuf.json_format import MessageToDict

from ..records import (
    MEDIA_KINDS,
    Box,
    Concept,
    GeoPoint,
    Media,
    Point,
    Record,
    RecordError,
    Region,
    id_problem,
)

__all__ = ["media_of", "record_from_input", "region_from_proto", "struct_to_dict"]

# Coordinates a hair outside 0..1 are float noise from pixel arithmetic, not errors.
_EPSILON = 1e-6


def struct_to_dict(struct: Any) -> dict[str, Any]:
    """A ``google.protobuf.Struct`` as a plain dict; integral numbers come back as ints
    (a Struct stores every number as a double, so ``1`` would otherwise become ``1.0``)."""
    if struct is None or not struct.fields:
        return {}
    return _ints(MessageToDict(struct))


def _ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def _unit(value: float) -> float:
    """A 0..1 coordinate or value from a float32 proto field, as the sender gave it."""
    if math.isnan(value):
        return value  # let the Record reject it with its own message
    value = _shortest_f32(value)
    if -_EPSILON <= value < 0.0:
        return 0.0
    if 1.0 < value <= 1.0 + _EPSILON:
        return 1.0
    return value


def _shortest_f32(value: float) -> float:
    """The shortest decimal that is the same float32 (coordinates, concept values and geo
    points are float32 on the wire: 0.1 comes back as 0.10000000149…)."""
    def f32(x: float) -> bytes:
        return struct.pack("<f", x)

    for digits in range(0, 10):
        candidate = round(value, digits)
        if f32(candidate) == f32(value):
            return candidate
    return value


def media_of(data: resources_pb2.Data, headers: Mapping[str, str] | None = None,
             ) -> Media | None:
    """The media of ``data`` (image, video, audio or text), lazily; None when it has none.

    Hosted copies are preferred (``hosted.prefix/orig/hosted.suffix``) and carry
    ``headers`` (the key) in ``storage_options``; a third-party URL never does.
    """
    for kind in MEDIA_KINDS:
        if not data.HasField(kind):
            continue
        part = getattr(data, kind)
        if kind == "text" and part.raw:
            return Media(kind="text", text=part.raw)
        if part.hosted.prefix and part.hosted.suffix:
            return Media(kind=kind, uri=f"{part.hosted.prefix}/orig/{part.hosted.suffix}",
                         storage_options={"headers": dict(headers)} if headers else None)
        if part.url:
            return Media(kind=kind, uri=part.url)
        if getattr(part, "base64", b""):
            return Media(kind=kind, data=bytes(part.base64))
    return None


def _concepts(items: Iterable[resources_pb2.Concept]) -> list[Concept]:
    out: dict[str, Concept] = {}
    for concept in items:
        if concept.id and concept.id not in out:
            out[concept.id] = Concept(id=concept.id, name=concept.name or concept.id,
                                      value=_unit(concept.value))
    return list(out.values())


def region_from_proto(region: resources_pb2.Region, headers: Mapping[str, str] | None = None,
                      ) -> Region | None:
    """The Region of a proto region; None for kinds a Region cannot hold (spans, tokens…).

    Raises RecordError for a malformed region (coordinates outside 0..1, a mask without
    an image).
    """
    info = region.region_info
    concepts = tuple(_concepts(region.data.concepts))
    region_id = region.id if region.id and id_problem(region.id) is None else ""
    if info.HasField("bounding_box"):
        box = info.bounding_box
        return Region(box=Box(_unit(box.top_row), _unit(box.left_col), _unit(box.bottom_row),
                              _unit(box.right_col)), concepts=concepts, id=region_id)
    if info.HasField("polygon"):
        points = tuple(Point(_unit(p.row), _unit(p.col)) for p in info.polygon.points)
        return Region(polygon=points, concepts=concepts, id=region_id)
    if info.HasField("mask"):
        image = info.mask.image
        if image.hosted.prefix and image.hosted.suffix:
            mask = Media(kind="image", uri=f"{image.hosted.prefix}/orig/{image.hosted.suffix}",
                         storage_options={"headers": dict(headers)} if headers else None)
        elif image.url:
            mask = Media(kind="image", uri=image.url)
        elif image.base64:
            mask = Media(kind="image", data=bytes(image.base64))
        else:
            raise RecordError(f"mask region '{region.id}' has no image")
        return Region(mask=mask, concepts=concepts, id=region_id)
    if info.HasField("point"):
        return Region(point=Point(_unit(info.point.row), _unit(info.point.col)),
                      concepts=concepts, id=region_id)
    return None


def record_from_input(item: resources_pb2.Input,
                      annotations: Iterable[resources_pb2.Annotation] = (), *,
                      headers: Mapping[str, str] | None = None,
                      notes: list[str] | None = None) -> Record:
    """The Record of an Input proto and its annotations.

    ``headers`` authenticate downloads of hosted media (and masks). What a Record cannot
    hold (text spans, video frames, an unusable region) is described in ``notes`` when a
    list is given. Raises RecordError (naming the input) when the input has no media or
    an invalid id.
    """
    where = f"input '{item.id}'"
    data = item.data
    media = media_of(data, headers)
    if media is None:
        raise RecordError(f"{where}: has no media (no image, video, audio or text)")
    concepts = {c.id: c for c in _concepts(data.concepts)}
    region_protos: list[resources_pb2.Region] = list(data.regions)
    frames = len(data.frames)
    for annotation in annotations:
        for concept in _concepts(annotation.data.concepts):
            concepts.setdefault(concept.id, concept)
        for region in annotation.data.regions:
            if not region.id:  # a region needs an id to be told apart: its annotation's
                region = _with_id(region, annotation.id)
            region_protos.append(region)
        frames += len(annotation.data.frames)
    regions: list[Region] = []
    seen: set[str] = set()
    skipped = 0
    for proto in region_protos:
        if proto.id and proto.id in seen:
            continue
        seen.add(proto.id)
        try:
            region = region_from_proto(proto, headers)
        except RecordError as exc:
            if notes is not None:
                notes.append(f"region '{proto.id}' not read: {exc}")
            continue
        if region is None:
            skipped += 1
            continue
        regions.append(region)
    if notes is not None:
        if skipped:
            notes.append(f"{skipped} region(s) of a kind other than box, polygon, mask or "
                         "point (text spans, tokens) not read")
        if frames:
            notes.append(f"{frames} video frame annotation(s) not read")
    geo = None
    if data.HasField("geo") and data.geo.HasField("geo_point"):
        point = data.geo.geo_point
        geo = GeoPoint(_shortest_f32(point.longitude), _shortest_f32(point.latitude))
    return Record(id=item.id, media=media, concepts=tuple(concepts.values()),
                  regions=tuple(regions), metadata=struct_to_dict(data.metadata),
                  dataset_ids=tuple(item.dataset_ids), geo=geo, source=where)


def _with_id(region: resources_pb2.Region, region_id: str) -> resources_pb2.Region:
    copy = resources_pb2.Region()
    copy.CopyFrom(region)
    copy.id = region_id
    return copy
