"""Builders of Input and Annotation protos from bytes, files, URLs, text, CSV and folders.

They are static methods of :class:`~clarifai_connect.client.input.Inputs` (through the
:class:`InputProtoBuilders` mixin), as the reference names them. The ``iter_*`` functions
are their lazy forms: they yield one proto at a time and report a bad row or file through
``on_error(location, reason)`` instead of stopping, so a bulk upload can go on.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2
from google.protobuf.struct_pb2 import Struct

from ..errors import UserError
from .utils import clean_input_id

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "tiff", "tif", "webp", "bmp", "gif")
TEXT_EXTENSIONS = ("txt",)
CSV_COLUMNS = ("inputid", "input", "concepts", "metadata", "geopoints")
INPUT_TYPES = ("image", "video", "audio", "text")
CSV_TYPES = ("raw", "url", "file_path")
OnError = Callable[[str, str], None]


def _raise(location: str, reason: str) -> None:
    raise UserError(f"{location}: {reason}")


def _struct(metadata: Any) -> Struct | None:
    if metadata is None or isinstance(metadata, Struct):
        return metadata
    if not isinstance(metadata, dict):
        raise UserError(f"metadata must be a dict or a Struct, not {type(metadata).__name__}.")
    struct = Struct()
    struct.update(metadata)
    return struct


def _read_text(path: str) -> str:
    try:
        return Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: text is not valid UTF-8 ({err.reason} at byte "
                        f"{err.start}).") from None


def _read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise UserError(f"{path}: cannot read file ({err.strerror or err}).") from None


def _concept(label: str, label_id: str | None = None) -> resources_pb2.Concept:
    return resources_pb2.Concept(id=label_id or str(label), name=str(label), value=1.0)


def _region_annotation(input_id: str, region_infos: list[resources_pb2.RegionInfo], label: str,
                       label_id: str | None, annot_id: str | None) -> resources_pb2.Annotation:
    regions = [resources_pb2.Region(region_info=info,
                                    data=resources_pb2.Data(concepts=[_concept(label, label_id)]))
               for info in region_infos]
    return resources_pb2.Annotation(id=annot_id or "", input_id=input_id,
                                    data=resources_pb2.Data(regions=regions))


class InputProtoBuilders:
    """The static ``get_*`` builders of Inputs (no API call: they only make protos)."""

    @staticmethod
    def _get_proto(input_id: str, dataset_id: str | None = None,
                   imagepb: resources_pb2.Image | None = None,
                   video_pb: resources_pb2.Video | None = None,
                   audio_pb: resources_pb2.Audio | None = None,
                   text_pb: resources_pb2.Text | None = None, geo_info: list | None = None,
                   labels: list | None = None, label_ids: list | None = None,
                   metadata: dict | Struct | None = None) -> resources_pb2.Input:
        """An Input with the given media parts, labels (input-level concepts), geo point
        ([longitude, latitude]) and metadata."""
        if labels is not None and not isinstance(labels, (list, tuple)):
            raise UserError("labels must be a list of label names.")
        if label_ids and len(label_ids) != len(labels or ()):
            raise UserError("labels and label_ids must have the same length.")
        data = resources_pb2.Data(image=imagepb, video=video_pb, audio=audio_pb, text=text_pb,
                                  metadata=_struct(metadata))
        if geo_info:
            if len(geo_info) != 2:
                raise UserError("geo_info must be [longitude, latitude].")
            data.geo.geo_point.longitude, data.geo.geo_point.latitude = map(float, geo_info)
        for i, label in enumerate(labels or ()):
            data.concepts.append(_concept(label, label_ids[i] if label_ids else None))
        return resources_pb2.Input(id=input_id, data=data,
                                   dataset_ids=[dataset_id] if dataset_id else [])

    @staticmethod
    def get_input_from_url(input_id: str, image_url: str | None = None,
                           video_url: str | None = None, audio_url: str | None = None,
                           text_url: str | None = None, dataset_id: str | None = None,
                           **kwargs: Any) -> resources_pb2.Input:
        """Create an input proto whose media the API downloads from URLs."""
        if not any((image_url, video_url, audio_url, text_url)):
            raise UserError("Give at least one of image_url, video_url, audio_url, text_url.")
        return InputProtoBuilders._get_proto(
            input_id, dataset_id,
            imagepb=resources_pb2.Image(url=image_url) if image_url else None,
            video_pb=resources_pb2.Video(url=video_url) if video_url else None,
            audio_pb=resources_pb2.Audio(url=audio_url) if audio_url else None,
            text_pb=resources_pb2.Text(url=text_url) if text_url else None, **kwargs)

    @staticmethod
    def get_input_from_file(input_id: str, image_file: str | None = None,
                            video_file: str | None = None, audio_file: str | None = None,
                            text_file: str | None = None, dataset_id: str | None = None,
                            **kwargs: Any) -> resources_pb2.Input:
        """Create an input proto from local files (media sent inline)."""
        if not any((image_file, video_file, audio_file, text_file)):
            raise UserError("Give at least one of image_file, video_file, audio_file, text_file.")
        return InputProtoBuilders._get_proto(
            input_id, dataset_id,
            imagepb=resources_pb2.Image(base64=_read_bytes(image_file)) if image_file else None,
            video_pb=resources_pb2.Video(base64=_read_bytes(video_file)) if video_file else None,
            audio_pb=resources_pb2.Audio(base64=_read_bytes(audio_file)) if audio_file else None,
            text_pb=resources_pb2.Text(raw=_read_text(text_file)) if text_file else None,
            **kwargs)

    @staticmethod
    def get_input_from_bytes(input_id: str, image_bytes: bytes | None = None,
                             video_bytes: bytes | None = None, audio_bytes: bytes | None = None,
                             text_bytes: bytes | None = None, dataset_id: str | None = None,
                             **kwargs: Any) -> resources_pb2.Input:
        """Create an input proto from bytes (text bytes must be UTF-8)."""
        if not any((image_bytes, video_bytes, audio_bytes, text_bytes)):
            raise UserError("Give at least one of image_bytes, video_bytes, audio_bytes, "
                            "text_bytes.")
        text = None
        if text_bytes:
            try:
                text = text_bytes.decode("utf-8") if isinstance(text_bytes, bytes) else text_bytes
            except UnicodeDecodeError:
                raise UserError(f"input '{input_id}': text_bytes are not valid UTF-8.") from None
        return InputProtoBuilders._get_proto(
            input_id, dataset_id,
            imagepb=resources_pb2.Image(base64=image_bytes) if image_bytes else None,
            video_pb=resources_pb2.Video(base64=video_bytes) if video_bytes else None,
            audio_pb=resources_pb2.Audio(base64=audio_bytes) if audio_bytes else None,
            text_pb=resources_pb2.Text(raw=text) if text is not None else None, **kwargs)

    @staticmethod
    def get_text_input(input_id: str, raw_text: str, dataset_id: str | None = None,
                       **kwargs: Any) -> resources_pb2.Input:
        """Create an input proto for raw text."""
        if raw_text is None:
            raise UserError(f"input '{input_id}': raw_text is required.")
        return InputProtoBuilders._get_proto(input_id, dataset_id,
                                             text_pb=resources_pb2.Text(raw=raw_text), **kwargs)

    @staticmethod
    def get_multimodal_input(input_id: str, raw_text: str | None = None,
                             text_bytes: bytes | None = None, image_url: str | None = None,
                             image_bytes: bytes | None = None, dataset_id: str | None = None,
                             **kwargs: Any) -> resources_pb2.Input:
        """Create an input proto holding text (raw or bytes) and an image (URL or bytes)."""
        if bool(image_bytes) == bool(image_url):
            raise UserError("Give exactly one of image_bytes or image_url.")
        if bool(text_bytes) == bool(raw_text):
            raise UserError("Give exactly one of text_bytes or raw_text.")
        if text_bytes:
            raw_text = text_bytes.decode("utf-8") if isinstance(text_bytes, bytes) else text_bytes
        image = resources_pb2.Image(base64=image_bytes) if image_bytes else \
            resources_pb2.Image(url=image_url)
        return InputProtoBuilders._get_proto(input_id, dataset_id, imagepb=image,
                                             text_pb=resources_pb2.Text(raw=raw_text), **kwargs)

    @staticmethod
    def get_image_inputs_from_folder(folder_path: str, dataset_id: str | None = None,
                                     labels: bool = False) -> list[resources_pb2.Input]:
        """Create input protos for the images of a folder (the file stem is the input id;
        with ``labels`` the folder name is each input's concept)."""
        return [p for _, p in iter_folder_inputs(folder_path, "image", dataset_id, labels)]

    @staticmethod
    def get_text_inputs_from_folder(folder_path: str, dataset_id: str | None = None,
                                    labels: bool = False) -> list[resources_pb2.Input]:
        """Create input protos for the ``.txt`` files of a folder."""
        return [p for _, p in iter_folder_inputs(folder_path, "text", dataset_id, labels)]

    @staticmethod
    def get_inputs_from_csv(csv_path: str, input_type: str = "text", csv_type: str = "raw",
                            dataset_id: str | None = None,
                            labels: bool = True) -> list[resources_pb2.Input]:
        """Create input protos from a CSV with columns ``input`` and optionally ``inputid``,
        ``concepts`` (comma-separated), ``metadata`` (JSON) and ``geopoints`` ("lon,lat").

        ``csv_type`` says what the ``input`` column holds: ``raw`` text, a ``url`` or a
        ``file_path``. A bad row raises UserError naming ``file:line``.
        """
        return [p for _, p in iter_csv_inputs(csv_path, input_type, csv_type, dataset_id, labels)]

    @staticmethod
    def get_bbox_proto(input_id: str, label: str, bbox: list, label_id: str | None = None,
                       annot_id: str | None = None) -> resources_pb2.Annotation:
        """Create an annotation with one bounding box, ``bbox`` = [xmin, ymin, xmax, ymax]
        normalized to 0..1."""
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            raise UserError(f"input '{input_id}': bbox must be [xmin, ymin, xmax, ymax].")
        xmin, ymin, xmax, ymax = (float(v) for v in bbox)
        box = resources_pb2.BoundingBox(top_row=ymin, left_col=xmin, bottom_row=ymax,
                                        right_col=xmax)
        return _region_annotation(input_id, [resources_pb2.RegionInfo(bounding_box=box)], label,
                                  label_id, annot_id)

    @staticmethod
    def get_mask_proto(input_id: str, label: str, polygons: list,
                       label_id: str | None = None,
                       annot_id: str | None = None) -> resources_pb2.Annotation:
        """Create an annotation with polygon region(s) from [x, y] points normalized to 0..1.

        ``polygons`` is one polygon (``[[x, y], …]``) or several (``[[[x, y], …], …]``);
        each becomes a region of the annotation.
        """
        if not isinstance(polygons, (list, tuple)) or not polygons:
            raise UserError(f"input '{input_id}': polygons must be a list of [x, y] points.")
        shapes = polygons if isinstance(polygons[0][0], (list, tuple)) else [polygons]
        infos = []
        for shape in shapes:
            try:
                points = [resources_pb2.Point(row=float(p[1]), col=float(p[0]),
                                              visibility=resources_pb2.Point.VISIBLE)
                          for p in shape]
            except (TypeError, IndexError, ValueError):
                raise UserError(f"input '{input_id}': each polygon point must be [x, y].") \
                    from None
            infos.append(resources_pb2.RegionInfo(polygon=resources_pb2.Polygon(points=points)))
        return _region_annotation(input_id, infos, label, label_id, annot_id)


def iter_folder_inputs(folder_path: str, input_type: str, dataset_id: str | None = None,
                       labels: bool = False,
                       on_error: OnError = _raise) -> Iterator[tuple[str, resources_pb2.Input]]:
    """(file path, input proto) for the image or text files of a folder, in name order,
    one at a time; a file that cannot be read goes to ``on_error``.

    A folder holding no such file but class folders (``pets/cat/1.png``, ``pets/dog/2.png``)
    is read class by class; with ``labels`` each input's concept is the name of its folder.
    File stems are the input ids (prefixed by the class when a stem repeats across classes).
    A folder with neither raises UserError: an upload of nothing is a mistake, not a success.
    """
    folder = Path(folder_path)
    if not folder.is_dir():
        raise UserError(f"{folder_path}: not a folder.")
    extensions = IMAGE_EXTENSIONS if input_type == "image" else TEXT_EXTENSIONS

    def media_files(where: Path) -> list[Path]:
        return [p for p in sorted(where.iterdir())
                if p.is_file() and p.suffix.lower().lstrip(".") in extensions]

    files = [(folder, path) for path in media_files(folder)]
    if not files:
        files = [(sub, path) for sub in sorted(folder.iterdir()) if sub.is_dir()
                 for path in media_files(sub)]
        if not files:
            raise UserError(f"{folder_path}: no {input_type} files in it, nor in class "
                            "folders under it.")
    stems = [path.stem for _, path in files]
    repeated = {stem for stem in stems if stems.count(stem) > 1} if len(set(stems)) < len(
        stems) else set()
    for parent, path in files:
        concept = [parent.resolve().name] if labels else None
        stem = f"{parent.name}-{path.stem}" if path.stem in repeated else path.stem
        input_id = clean_input_id(stem)
        try:
            if not input_id:
                raise UserError(f"{path}: the file name gives an empty input id.")
            if input_type == "image":
                yield str(path), InputProtoBuilders._get_proto(
                    input_id, dataset_id, imagepb=resources_pb2.Image(base64=_read_bytes(path)),
                    labels=concept)
            else:
                yield str(path), InputProtoBuilders._get_proto(
                    input_id, dataset_id, text_pb=resources_pb2.Text(raw=_read_text(path)),
                    labels=concept)
        except UserError as err:
            on_error(str(path), str(err).removeprefix(f"{path}: "))


def _row_id(row: dict[str, str]) -> str:
    """A deterministic id for a CSV row without ``inputid``: the same row gives the same id."""
    canonical = json.dumps([row.get(c, "") for c in CSV_COLUMNS], ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def iter_csv_inputs(csv_path: str, input_type: str = "text", csv_type: str = "raw",
                    dataset_id: str | None = None, labels: bool = True,
                    on_error: OnError = _raise) -> Iterator[tuple[str, resources_pb2.Input]]:
    """(``file:line``, input proto) for the rows of a CSV file, one at a time (see
    get_inputs_from_csv); a bad row goes to ``on_error``."""
    if input_type not in INPUT_TYPES:
        raise UserError(f"input_type '{input_type}' is invalid: use one of {', '.join(INPUT_TYPES)}.")
    if csv_type not in CSV_TYPES:
        raise UserError(f"csv_type '{csv_type}' is invalid: use one of {', '.join(CSV_TYPES)}.")
    if csv_type == "raw" and input_type != "text":
        raise UserError("csv_type 'raw' holds text: use input_type='text', or csv_type 'url' "
                        "or 'file_path' for media.")
    try:
        handle = open(csv_path, newline="", encoding="utf-8")
    except OSError as err:
        raise UserError(f"{csv_path}: cannot open CSV file ({err.strerror or err}).") from None
    with handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        unknown = [c for c in columns if c not in CSV_COLUMNS]
        if unknown or "input" not in columns:
            raise UserError(f"{csv_path}: columns must include 'input' and may include "
                            f"{', '.join(CSV_COLUMNS)}; found {', '.join(columns) or 'none'}.")
        if labels and "concepts" not in columns:
            raise UserError(f"{csv_path}: labels=True needs a 'concepts' column.")
        base = os.path.dirname(os.path.abspath(csv_path))
        for row in reader:
            location = f"{csv_path}:{reader.line_num}"
            try:
                yield location, _csv_row_input(row, input_type, csv_type, dataset_id, labels,
                                               base)
            except UserError as err:
                on_error(location, str(err))


def _csv_row_input(row: dict[str, str], input_type: str, csv_type: str,
                   dataset_id: str | None, labels: bool, base: str) -> resources_pb2.Input:
    if None in row:
        raise UserError("the row has more fields than the header")
    value = row.get("input") or ""
    if not value:
        raise UserError("the 'input' column is empty")
    concepts = [c.strip() for c in (row.get("concepts") or "").split(",") if c.strip()] \
        if labels else None
    metadata = None
    if row.get("metadata"):
        try:  # the SDK's CSVs quote metadata with single quotes
            metadata = json.loads(row["metadata"].replace("'", '"'))
        except json.JSONDecodeError as err:
            raise UserError(f"the 'metadata' column is not valid JSON ({err.msg})") from None
        if not isinstance(metadata, dict):
            raise UserError("the 'metadata' column must hold a JSON object")
    geo = None
    if row.get("geopoints"):
        try:
            geo = [float(v) for v in row["geopoints"].split(",")]
        except ValueError:
            geo = []
        if len(geo) != 2:
            raise UserError("the 'geopoints' column must be 'longitude,latitude'")
    input_id = (row.get("inputid") or "").strip() or _row_id(row)
    extra = {"labels": concepts or None, "metadata": metadata, "geo_info": geo}
    if csv_type == "raw":
        return InputProtoBuilders.get_text_input(input_id, value, dataset_id, **extra)
    if csv_type == "url":
        return InputProtoBuilders.get_input_from_url(
            input_id, **{f"{input_type}_url": value}, dataset_id=dataset_id, **extra)
    path = value if os.path.isabs(value) or os.path.exists(value) else os.path.join(base, value)
    return InputProtoBuilders.get_input_from_file(
        input_id, **{f"{input_type}_file": path}, dataset_id=dataset_id, **extra)
