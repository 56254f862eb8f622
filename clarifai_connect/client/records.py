"""Records ↔ protos: the only place a :class:`~clarifai_connect.records.Record` becomes an
``Input`` and its regions ``Annotation`` protos, and the way back out of the API (DESIGN:
protos live in ``client/``). Each field kind (media, concept, point, box, metadata) has its
pair of conversions side by side.

Into the API: input-level concepts, metadata, the geo point and dataset ids travel inside
the Input, so the API stores them atomically with it. Regions become one Annotation each,
posted once the input landed; their ids are derived from the record id and the region's
position, so sending them twice is detectable (the second is "already there", never a
duplicate).

Out of the API: an input's labels live in two places: its own ``data`` (input-level
concepts, metadata, and in export archives every region) and its annotations (one per
region, plus the input-level one mirroring its concepts). :func:`record_from_input` merges
both, deduplicating concepts by id and regions by id, as a dataset-version snapshot does.
Media stay lazy: hosted media become URIs whose ``storage_options`` carry the key header
(fsspec's http filesystem and the export runner send it; it never shows in reprs),
third-party URLs go without it.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct

from ..mediatypes import MediaContentError, content_problem
from ..records import (
    MAX_ID_LENGTH,
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

__all__ = ["annotation_id", "media_of", "record_annotations", "record_from_input",
           "record_input", "region_from_proto", "struct_to_dict"]

_MEDIA_FIELDS = {"image": resources_pb2.Image, "video": resources_pb2.Video,
                 "audio": resources_pb2.Audio, "text": resources_pb2.Text}

# Coordinates a hair outside 0..1 are float noise from pixel arithmetic, not errors.
_EPSILON = 1e-6

# -- field by field: to the proto, and back ------------------------------------------------


def _read(media: Media) -> bytes:
    """The media's bytes; plain local paths are read directly (fsspec's per-open overhead
    dominates the cost of a small image), anything else through ``Media.read_bytes``."""
    uri = media.uri
    if uri is not None and not media.storage_options and (
            "://" not in uri or uri.startswith("file://")):
        fd = os.open(uri.removeprefix("file://"), os.O_RDONLY)
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    return media.read_bytes()


def _media_part(media: Media, decode: bool = False) -> Any:
    """The Image/Video/Audio/Text proto: URLs the API fetches itself stay URLs, anything
    else (local paths, s3://, bytes) is read here and sent inline — once its first bytes
    show it is the kind it claims (``decode``: once it decodes), else MediaContentError."""
    part = _MEDIA_FIELDS[media.kind]()
    _fill_media(part, media, decode)
    return part


def _fill_media(part: Any, media: Media, decode: bool = False) -> None:
    """Set the media fields of ``part`` (an Image/Video/Audio/Text proto) in place, as
    :func:`_media_part` describes (filling a field in place copies nothing)."""
    if media.is_http:
        part.url = media.uri
    elif media.kind == "text":
        part.raw = media.text if media.text is not None else _read(media).decode("utf-8")
    else:
        data = _read(media)
        problem = content_problem(media.kind, data, decode)
        if problem:
            raise MediaContentError(problem)
        part.base64 = data


def _media(kind: str, part: Any, headers: Mapping[str, str] | None) -> Media | None:
    """The Media of an Image/Video/Audio/Text proto, lazily; None when it holds nothing.
    The hosted copy is preferred and carries ``headers`` (the key); a third-party URL
    never does."""
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


def _concept_proto(concept: Concept) -> resources_pb2.Concept:
    return resources_pb2.Concept(id=concept.id, name=concept.name, value=concept.value)


def _concepts(items: Iterable[resources_pb2.Concept]) -> list[Concept]:
    out: dict[str, Concept] = {}
    _add_concepts(out, items)
    return list(out.values())


def _add_concepts(out: dict[str, Concept], items: Iterable[resources_pb2.Concept]) -> None:
    """Add the Concepts of ``items`` not in ``out`` yet (by id; each one is checked)."""
    for concept in items:
        concept_id = concept.id
        if concept_id:
            built = _concept(concept_id, concept.name, concept.value)
            if concept_id not in out:
                out[concept_id] = built


@functools.lru_cache(maxsize=4096)
def _concept(concept_id: str, name: str, value: float) -> Concept:
    # Labels repeat across inputs and Concepts are immutable: each is built (and checked)
    # once; a bad one raises every time (exceptions are not cached).
    return Concept(id=concept_id, name=name or concept_id, value=_unit(value))


def _point_proto(point: Point) -> resources_pb2.Point:
    return resources_pb2.Point(row=point.row, col=point.col,
                               visibility=resources_pb2.Point.VISIBLE)


def _point(point: resources_pb2.Point) -> Point:
    return Point(_unit(point.row), _unit(point.col))


def _box_proto(box: Box) -> resources_pb2.BoundingBox:
    return resources_pb2.BoundingBox(top_row=box.top_row, left_col=box.left_col,
                                     bottom_row=box.bottom_row, right_col=box.right_col)


def _box(box: resources_pb2.BoundingBox) -> Box:
    return Box(_unit(box.top_row), _unit(box.left_col), _unit(box.bottom_row),
               _unit(box.right_col))


def _struct(values: Mapping[str, Any]) -> Struct:
    out = Struct()
    out.update(dict(values))
    return out


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


# -- Record → Input and Annotations ----------------------------------------------------------


def record_input(record: Record, dataset_ids: Iterable[str] = (),
                 check_media: bool = False) -> resources_pb2.Input:
    """The Input proto of ``record`` (reads its media: may raise OSError or ValueError,
    MediaContentError when its bytes are not the kind it claims; ``check_media`` also
    decodes images).

    ``dataset_ids`` are added to the record's own.
    """
    # Filled in place, field by field: building sub-messages and copying them in costs
    # about three times as much per input.
    proto = resources_pb2.Input(id=record.id)
    data = proto.data
    part = getattr(data, record.media.kind)
    part.SetInParent()  # present even when empty (an empty text), as a copied-in part was
    _fill_media(part, record.media, check_media)
    for concept in record.concepts:
        data.concepts.add(id=concept.id, name=concept.name, value=concept.value)
    if record.metadata:
        data.metadata.CopyFrom(_struct(record.metadata))
    if record.geo is not None:
        data.geo.geo_point.longitude = record.geo.longitude
        data.geo.geo_point.latitude = record.geo.latitude
    if record.dataset_ids or dataset_ids:
        proto.dataset_ids.extend(dict.fromkeys([*record.dataset_ids, *dataset_ids]))
    return proto


def annotation_id(record_id: str, index: int, region: Region | None = None) -> str:
    """The id of the ``index``-th region's annotation: the region's own id, else
    ``<record id>-r<index>`` (hashed when that would be too long for an id)."""
    if region is not None and region.id:
        return region.id
    suffix = f"-r{index}"
    if len(record_id) + len(suffix) <= MAX_ID_LENGTH:
        return record_id + suffix
    digest = hashlib.sha256(record_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{record_id[:MAX_ID_LENGTH - len(suffix) - 13]}-{digest}{suffix}"


def _region_info(region: Region) -> resources_pb2.RegionInfo:
    info = resources_pb2.RegionInfo()
    if region.box is not None:
        info.bounding_box.CopyFrom(_box_proto(region.box))
    elif region.polygon:
        info.polygon.CopyFrom(resources_pb2.Polygon(
            points=[_point_proto(p) for p in region.polygon]))
    elif region.mask is not None:
        info.mask.CopyFrom(resources_pb2.Mask(image=_media_part(region.mask)))
    else:
        info.point.CopyFrom(_point_proto(region.point))
    return info


def record_annotations(record: Record) -> list[resources_pb2.Annotation]:
    """One Annotation per region of ``record`` (reads mask media), with derived ids."""
    out = []
    for index, region in enumerate(record.regions):
        proto_region = resources_pb2.Region(
            id=region.id,  # kept, so exports can follow the record's metadata links to it
            region_info=_region_info(region),
            data=resources_pb2.Data(concepts=[_concept_proto(c) for c in region.concepts]))
        out.append(resources_pb2.Annotation(
            id=annotation_id(record.id, index, region), input_id=record.id,
            data=resources_pb2.Data(regions=[proto_region])))
    return out


# -- Input and Annotations → Record ----------------------------------------------------------


def media_of(data: resources_pb2.Data, headers: Mapping[str, str] | None = None,
             ) -> Media | None:
    """The media of ``data`` (image, video, audio or text), lazily; None when it has none.

    Hosted copies are preferred (``hosted.prefix/orig/hosted.suffix``) and carry
    ``headers`` (the key) in ``storage_options``; a third-party URL never does.
    """
    for kind in MEDIA_KINDS:
        if data.HasField(kind):
            media = _media(kind, getattr(data, kind), headers)
            if media is not None:
                return media
    return None


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
        return Region(box=_box(info.bounding_box), concepts=concepts, id=region_id)
    if info.HasField("polygon"):
        points = tuple(_point(p) for p in info.polygon.points)
        return Region(polygon=points, concepts=concepts, id=region_id)
    if info.HasField("mask"):
        mask = _media("image", info.mask.image, headers)
        if mask is None:
            raise RecordError(f"mask region '{region.id}' has no image")
        return Region(mask=mask, concepts=concepts, id=region_id)
    if info.HasField("point"):
        return Region(point=_point(info.point), concepts=concepts, id=region_id)
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
    # ListFields: the fields that are set, in one call (a probe per field costs more).
    concepts: dict[str, Concept] = {}
    region_protos: list[resources_pb2.Region] = []
    frames = 0
    metadata: dict[str, Any] = {}
    geo = None
    for field, value in data.ListFields():
        name = field.name
        if name == "concepts":
            _add_concepts(concepts, value)
        elif name == "regions":
            region_protos.extend(value)
        elif name == "frames":
            frames += len(value)
        elif name == "metadata":
            metadata = struct_to_dict(value)
        elif name == "geo" and value.HasField("geo_point"):
            point = value.geo_point
            geo = GeoPoint(_shortest_f32(point.longitude), _shortest_f32(point.latitude))
    for annotation in annotations:
        for field, value in annotation.data.ListFields():
            name = field.name
            if name == "concepts":
                _add_concepts(concepts, value)
            elif name == "regions":
                for region in value:
                    if not region.id:  # a region needs an id to be told apart: its annotation's
                        region = _with_id(region, annotation.id)
                    region_protos.append(region)
            elif name == "frames":
                frames += len(value)
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
    # The parts are Concepts, Regions and a GeoPoint that checked themselves: the record
    # checks the rest (ids, metadata) without converting them again.
    return Record.from_parts(id=item.id, media=media, concepts=tuple(concepts.values()),
                             regions=tuple(regions), metadata=metadata,
                             dataset_ids=tuple(item.dataset_ids), geo=geo, source=where)


def _with_id(region: resources_pb2.Region, region_id: str) -> resources_pb2.Region:
    copy = resources_pb2.Region()
    copy.CopyFrom(region)
    copy.id = region_id
    return copy
