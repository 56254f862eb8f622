"""Records to protos: the only place a :class:`~clarifai_connect.records.Record` becomes an
``Input`` and its regions ``Annotation`` protos (DESIGN: protos live in ``client/``).

Input-level concepts, metadata, the geo point and dataset ids travel inside the Input, so
the API stores them atomically with it. Regions become one Annotation each, posted once
the input landed; their ids are derived from the record id and the region's position, so
sending them twice is detectable (the second is "already there", never a duplicate).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

from clarifai_grpc.grpc.api import resources_pb2
from google.protobuf.struct_pb2 import Struct

from ..records import MAX_ID_LENGTH, Concept, Media, Record, Region

__all__ = ["annotation_id", "record_annotations", "record_input"]

_MEDIA_FIELDS = {"image": resources_pb2.Image, "video": resources_pb2.Video,
                 "audio": resources_pb2.Audio, "text": resources_pb2.Text}


def _concept(concept: Concept) -> resources_pb2.Concept:
    return resources_pb2.Concept(id=concept.id, name=concept.name, value=concept.value)


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


def _media_part(media: Media) -> object:
    """The Image/Video/Audio/Text proto: URLs the API fetches itself stay URLs, anything
    else (local paths, s3://, bytes) is read here and sent inline."""
    cls = _MEDIA_FIELDS[media.kind]
    if media.is_http:
        return cls(url=media.uri)
    if media.kind == "text":
        return cls(raw=media.text if media.text is not None else _read(media).decode("utf-8"))
    return cls(base64=_read(media))


def record_input(record: Record, dataset_ids: Iterable[str] = ()) -> resources_pb2.Input:
    """The Input proto of ``record`` (reads its media: may raise OSError or ValueError).

    ``dataset_ids`` are added to the record's own.
    """
    data = resources_pb2.Data(concepts=[_concept(c) for c in record.concepts])
    getattr(data, record.media.kind).CopyFrom(_media_part(record.media))
    if record.metadata:
        struct = Struct()
        struct.update(dict(record.metadata))
        data.metadata.CopyFrom(struct)
    if record.geo is not None:
        data.geo.geo_point.longitude = record.geo.longitude
        data.geo.geo_point.latitude = record.geo.latitude
    datasets = list(dict.fromkeys([*record.dataset_ids, *dataset_ids]))
    return resources_pb2.Input(id=record.id, data=data, dataset_ids=datasets)


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
        box = region.box
        info.bounding_box.CopyFrom(resources_pb2.BoundingBox(
            top_row=box.top_row, left_col=box.left_col, bottom_row=box.bottom_row,
            right_col=box.right_col))
    elif region.polygon:
        info.polygon.CopyFrom(resources_pb2.Polygon(points=[
            resources_pb2.Point(row=p.row, col=p.col, visibility=resources_pb2.Point.VISIBLE)
            for p in region.polygon]))
    elif region.mask is not None:
        mask = region.mask
        image = resources_pb2.Image(url=mask.uri) if mask.is_http else \
            resources_pb2.Image(base64=_read(mask))
        info.mask.CopyFrom(resources_pb2.Mask(image=image))
    else:
        info.point.CopyFrom(resources_pb2.Point(row=region.point.row, col=region.point.col,
                                                visibility=resources_pb2.Point.VISIBLE))
    return info


def record_annotations(record: Record) -> list[resources_pb2.Annotation]:
    """One Annotation per region of ``record`` (reads mask media), with derived ids."""
    out = []
    for index, region in enumerate(record.regions):
        proto_region = resources_pb2.Region(
            id=region.id,  # kept, so exports can follow the record's metadata links to it
            region_info=_region_info(region),
            data=resources_pb2.Data(concepts=[_concept(c) for c in region.concepts]))
        out.append(resources_pb2.Annotation(
            id=annotation_id(record.id, index, region), input_id=record.id,
            data=resources_pb2.Data(regions=[proto_region])))
    return out
