"""Rank and filter dicts of ``Search.query``: checked against the reference's schema, then
turned into ``Rank`` and ``Filter`` protos (the caller's dicts are never changed).

The keys, as the official SDK takes them:

- ``image_url`` (``http(s)://…``), ``image_bytes`` (bytes), ``text_raw`` (non-empty);
- ``concepts``: a list of dicts with ``id`` and/or ``name`` (``[0-9A-Za-z]`` words joined
  by ``-`` or ``_``), optional ``value`` 0 or 1 and ``language``;
- ``metadata`` (a dict, matched partially), ``geo_point`` (exactly ``longitude``,
  ``latitude`` and ``geo_limit`` in kilometres);
- filters only: ``input_types`` (a list of image, video, text, audio),
  ``input_dataset_ids`` (a list of ids), ``input_status_code`` (an int).

Two keys of this project's own: ``input_id`` in a rank (rank by the likeness to a stored
input) and ``negate`` (true or false) in a filter (match what the rest does *not* match).
Every problem is a :class:`~clarifai_connect.errors.UserError` naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2

from ..errors import UserError

__all__ = ["INPUT_TYPES", "filter_proto", "rank_proto"]

INPUT_TYPES = ("image", "video", "text", "audio")
_COMMON = ("image_url", "image_bytes", "text_raw", "concepts", "metadata", "geo_point")
_RANK_KEYS = (*_COMMON, "input_id")
_FILTER_KEYS = (*_COMMON, "input_types", "input_dataset_ids", "input_status_code", "negate")
_CONCEPT_KEYS = ("id", "name", "value", "language")
_NAME = re.compile(r"^[0-9A-Za-z]+([-_][0-9A-Za-z]+)*$")
_GEO_KEYS = ("longitude", "latitude", "geo_limit")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _nonempty_str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise UserError(f"{where} must be a non-empty string, got {value!r}.")
    return value


def _concepts(value: Any, where: str) -> list[resources_pb2.Concept]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise UserError(f"{where} must be a list of concept dicts, got {type(value).__name__}.")
    out = []
    for n, concept in enumerate(value):
        at = f"{where}[{n}]"
        if not isinstance(concept, Mapping) or not concept:
            raise UserError(f"{at} must be a non-empty dict with 'id' or 'name'.")
        unknown = sorted(set(concept) - set(_CONCEPT_KEYS))
        if unknown:
            raise UserError(f"{at}: unknown key '{unknown[0]}' (a concept takes "
                            f"{', '.join(_CONCEPT_KEYS)}).")
        proto = resources_pb2.Concept(value=1.0)
        if "id" in concept:
            proto.id = _nonempty_str(concept["id"], f"{at}.id")
        if "name" in concept:
            proto.name = _nonempty_str(concept["name"], f"{at}.name")
            if not _NAME.match(proto.name):
                raise UserError(f"{at}.name {proto.name!r} must be letters and digits joined "
                                "by single dashes or underscores.")
        if "language" in concept:
            proto.language = _nonempty_str(concept["language"], f"{at}.language")
        if "value" in concept:
            value = concept["value"]
            if isinstance(value, bool) or value not in (0, 1):
                raise UserError(f"{at}.value must be 0 or 1, got {value!r}.")
            proto.value = float(value)
        if not (proto.id or proto.name):
            raise UserError(f"{at} needs an 'id' or a 'name'.")
        out.append(proto)
    return out


def _geo(value: Any, where: str) -> resources_pb2.Geo:
    if not isinstance(value, Mapping) or set(value) != set(_GEO_KEYS):
        raise UserError(f"{where} must be a dict of exactly {', '.join(_GEO_KEYS)}, got "
                        f"{sorted(value) if isinstance(value, Mapping) else value!r}.")
    for key in _GEO_KEYS:
        if not _number(value[key]):
            raise UserError(f"{where}.{key} must be a number, got {value[key]!r}.")
    if not -90 <= value["latitude"] <= 90 or not -180 <= value["longitude"] <= 180:
        raise UserError(f"{where}: latitude must be within ±90 and longitude within ±180.")
    if value["geo_limit"] <= 0:
        raise UserError(f"{where}.geo_limit must be more than 0 (kilometres).")
    return resources_pb2.Geo(
        geo_point=resources_pb2.GeoPoint(longitude=value["longitude"],
                                         latitude=value["latitude"]),
        geo_limit=resources_pb2.GeoLimit(type="withinKilometers", value=value["geo_limit"]))


def _data(term: Mapping[str, Any], where: str) -> resources_pb2.Data:
    """The Data of the keys shared by ranks and filters."""
    data = resources_pb2.Data()
    if "image_url" in term:
        url = term["image_url"]
        if not isinstance(url, str) or not re.match(r"^https?://", url):
            raise UserError(f"{where}.image_url must be an http(s) URL, got {url!r}.")
        data.image.url = url
    if "image_bytes" in term:
        if not isinstance(term["image_bytes"], bytes | bytearray) or not term["image_bytes"]:
            raise UserError(f"{where}.image_bytes must be non-empty bytes.")
        if data.HasField("image"):
            raise UserError(f"{where}: give image_url or image_bytes, not both.")
        data.image.base64 = bytes(term["image_bytes"])
    if "text_raw" in term:
        data.text.raw = _nonempty_str(term["text_raw"], f"{where}.text_raw")
    if "concepts" in term:
        data.concepts.extend(_concepts(term["concepts"], f"{where}.concepts"))
    if "metadata" in term:
        if not isinstance(term["metadata"], Mapping):
            raise UserError(f"{where}.metadata must be a dict, got "
                            f"{type(term['metadata']).__name__}.")
        try:
            data.metadata.update(dict(term["metadata"]))
        except (ValueError, TypeError) as exc:  # not JSON-like
            raise UserError(f"{where}.metadata cannot be sent: {exc}.") from None
    if "geo_point" in term:
        data.geo.CopyFrom(_geo(term["geo_point"], f"{where}.geo_point"))
    return data


def _check_keys(term: Any, where: str, known: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(term, Mapping):
        raise UserError(f"{where} must be a dict, got {type(term).__name__}.")
    unknown = [k for k in term if k not in known]
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(known)}).")
    return term


def rank_proto(term: Any, where: str = "ranks[0]") -> resources_pb2.Rank:
    """The Rank of one rank dict."""
    term = _check_keys(term, where, _RANK_KEYS)
    annotation = resources_pb2.Annotation(data=_data(term, where))
    if "input_id" in term:
        annotation.input_id = _nonempty_str(term["input_id"], f"{where}.input_id")
    return resources_pb2.Rank(annotation=annotation)


def filter_proto(term: Any, where: str = "filters[0]") -> resources_pb2.Filter:
    """The Filter of one filter dict (its parts are OR; separate filters are AND)."""
    term = _check_keys(term, where, _FILTER_KEYS)
    flt = resources_pb2.Filter(annotation=resources_pb2.Annotation(data=_data(term, where)))
    inp = flt.input
    if "input_types" in term:
        types = term["input_types"]
        if not isinstance(types, Sequence) or isinstance(types, str):
            raise UserError(f"{where}.input_types must be a list, got {types!r}.")
        for kind in types:
            if kind not in INPUT_TYPES:
                raise UserError(f"{where}.input_types: unknown input type {kind!r} "
                                f"(one of {', '.join(INPUT_TYPES)}).")
            getattr(inp.data, kind).SetInParent()  # an empty Image() etc. selects the type
    if "input_dataset_ids" in term:
        ids = term["input_dataset_ids"]
        if not isinstance(ids, Sequence) or isinstance(ids, str):
            raise UserError(f"{where}.input_dataset_ids must be a list of ids, got {ids!r}.")
        inp.dataset_ids.extend(_nonempty_str(d, f"{where}.input_dataset_ids") for d in ids)
    if "input_status_code" in term:
        code = term["input_status_code"]
        if not isinstance(code, int) or isinstance(code, bool):
            raise UserError(f"{where}.input_status_code must be an int, got {code!r}.")
        inp.status.code = code
    if "negate" in term:
        if not isinstance(term["negate"], bool):
            raise UserError(f"{where}.negate must be true or false, got {term['negate']!r}.")
        flt.negate = term["negate"]
    return flt

