"""Records: the one currency between connectors, the engine and exporters.

Plain frozen dataclasses, no protobufs. A connector yields :class:`Record` for every good
item and :class:`Problem` for every broken one, so nothing is dropped silently. Records are
validated at construction (ids, coordinates, media kinds, JSON-able metadata) and raise
:class:`RecordError` naming their source location; media is never read at construction.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_ID_LENGTH",
    "MEDIA_KINDS",
    "NOTICE_KINDS",
    "Box",
    "Concept",
    "GeoPoint",
    "Media",
    "Notice",
    "Point",
    "Problem",
    "Record",
    "RecordError",
    "Region",
    "box_problem",
    "concept_id",
    "fingerprint_of",
    "id_problem",
    "prechecked_polygon",
    "stable_id",
]

MEDIA_KINDS = ("image", "video", "audio", "text")
MAX_ID_LENGTH = 255
# Clarifai ids: letters, digits, '_', '-' and '.', not starting with a separator.
_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_INVALID_ID_CHARS = re.compile(r"[^A-Za-z0-9_.\-]+")
_HASH_LEN = 10


class RecordError(ValueError):
    """A record or one of its parts is invalid; the message names its source location."""


def id_problem(value: str, what: str = "id") -> str | None:
    """Why ``value`` is not a valid Clarifai id, or None when it is."""
    if not value:
        return f"{what} is empty"
    if not isinstance(value, str):
        return f"{what} {value!r} is not a string"
    if len(value) > MAX_ID_LENGTH:
        return f"{what} '{value[:40]}…' is longer than {MAX_ID_LENGTH} characters"
    if not _ID.match(value):
        return (f"{what} '{value}' has invalid characters: use letters, digits, "
                "'_', '-' and '.', not starting with '-' or '.'")
    return None


def _digest(text: str, length: int = _HASH_LEN) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def stable_id(key: str, prefix: str = "") -> str:
    """Turn a source item's identity (a relative path, a row key) into a valid, stable id.

    The same ``key`` gives the same id on every run and machine. Keys that are already
    valid ids are kept as they are; otherwise invalid characters become ``_`` and a short
    hash of the original key is appended, so two keys that sanitise alike
    (``a b.jpg`` and ``a_b.jpg``) still get different ids. Over-long keys are cut and hashed.
    """
    raw = f"{prefix}{key}"
    if id_problem(raw) is None:
        return raw
    clean = _INVALID_ID_CHARS.sub("_", raw).lstrip("-.")
    suffix = "-" + _digest(raw)
    clean = clean[: MAX_ID_LENGTH - len(suffix)]
    return (clean + suffix) if clean else "id" + suffix


def concept_id(name: str) -> str:
    """A readable concept id for a label name: ``golden retriever`` → ``golden-retriever``.

    Unlike :func:`stable_id`, labels that differ only in separators share an id (they are
    the same label to a person); empty or over-long names fall back to a hash.
    """
    name = str(name).strip()
    if id_problem(name) is None:
        return name
    clean = _INVALID_ID_CHARS.sub("-", name).strip("-.")
    if not clean:
        return "concept-" + _digest(name)
    if len(clean) > MAX_ID_LENGTH:
        clean = clean[: MAX_ID_LENGTH - _HASH_LEN - 1] + "-" + _digest(name)
    return clean


def fingerprint_of(*parts: Any) -> str:
    """A stable hex digest of JSON-able ``parts``, for change detection."""
    payload = _fingerprint_json(parts)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    if isinstance(value, (tuple, frozenset, set)):
        return list(value)
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__
                if k not in ("storage_options",)}
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def one_shot_encoder(**options: Any) -> Callable[[Any], str]:
    """``json.JSONEncoder(**options).encode`` of JSON-like values without cycles, with the C
    encoder that ``encode`` builds on every call built once (half the cost of a small
    value); the plain ``encode`` where the C accelerator is missing. It keeps no cycle
    check (the check's memo would be shared by every call and thread): a value that
    contains itself raises RecursionError."""
    encoder = json.JSONEncoder(**options)
    make = json.encoder.c_make_encoder
    if make is None or encoder.indent is not None:
        return encoder.encode
    strings = json.encoder.encode_basestring_ascii if encoder.ensure_ascii \
        else json.encoder.encode_basestring
    one_shot = make(None, encoder.default, strings, None, encoder.key_separator,
                    encoder.item_separator, encoder.sort_keys, encoder.skipkeys,
                    encoder.allow_nan)
    return lambda value: "".join(one_shot(value, 0))


# What ``json.dumps(parts, sort_keys=True, separators=(",", ":"), default=_json_default)``
# gives (the fingerprints of earlier runs stay valid).
_fingerprint_json = one_shot_encoder(sort_keys=True, separators=(",", ":"),
                                     default=_json_default)
_canonical_json = one_shot_encoder(allow_nan=False, sort_keys=True, separators=(",", ":"))
_compact_json = one_shot_encoder(separators=(",", ":"))


def _unit(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"{what} {value!r} is not a number") from exc
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise RecordError(f"{what} {value!r} is outside 0..1")
    return number


@dataclass(frozen=True)
class Concept:
    """A label: ``id`` (a valid Clarifai id), a display ``name`` and a ``value`` (1 = present,
    0 = explicitly absent)."""

    id: str
    name: str = ""
    value: float = 1.0

    def __post_init__(self) -> None:
        problem = id_problem(self.id, "concept id")
        if problem:
            raise RecordError(problem)
        if not self.name:
            object.__setattr__(self, "name", self.id)
        value = _unit(self.value, f"value of concept '{self.id}'")
        object.__setattr__(self, "value", value)

    @classmethod
    def named(cls, name: str, value: float = 1.0) -> Concept:
        """A concept from a label name, its id derived with :func:`concept_id`."""
        if cls is Concept:
            return _named_concept(str(name), value)
        return cls(id=concept_id(name), name=str(name).strip(), value=value)


@functools.lru_cache(maxsize=8192)
def _named_concept(name: str, value: float) -> Concept:
    # Labels repeat across records and concepts are immutable: build each one once.
    return Concept(id=concept_id(name), name=name.strip(), value=value)


def box_problem(top_row: float, left_col: float, bottom_row: float,
                right_col: float) -> str | None:
    """Why a box of normalized sides is unusable, or None: the one rule the client and the
    local server both apply (the API refuses a box without area, so the client does too)."""
    if top_row > bottom_row:
        return f"box top_row {top_row} is below bottom_row {bottom_row} (not above it)"
    if left_col > right_col:
        return f"box left_col {left_col} is right of right_col {right_col} (not left of it)"
    if top_row == bottom_row:
        return f"box top_row {top_row} equals bottom_row {bottom_row}: the box has no height"
    if left_col == right_col:
        return f"box left_col {left_col} equals right_col {right_col}: the box has no width"
    return None


@dataclass(frozen=True)
class Box:
    """A bounding box in normalized coordinates (0..1), top-left origin, as Clarifai stores it."""

    top_row: float
    left_col: float
    bottom_row: float
    right_col: float

    def __post_init__(self) -> None:
        for name in ("top_row", "left_col", "bottom_row", "right_col"):
            object.__setattr__(self, name, _unit(getattr(self, name), f"box {name}"))
        problem = box_problem(self.top_row, self.left_col, self.bottom_row, self.right_col)
        if problem:
            raise RecordError(problem)

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float,
                  width: float, height: float) -> Box:
        """A box from pixel ``x, y, w, h`` in an image of ``width`` × ``height`` pixels."""
        if width <= 0 or height <= 0:
            raise RecordError(f"image size {width}x{height} is not positive")
        return cls(top_row=y / height, left_col=x / width,
                   bottom_row=(y + h) / height, right_col=(x + w) / width)


@dataclass(frozen=True)
class Point:
    """A point in normalized coordinates: ``row`` (y) and ``col`` (x), each 0..1."""

    row: float
    col: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", _unit(self.row, "point row"))
        object.__setattr__(self, "col", _unit(self.col, "point col"))


@dataclass(frozen=True)
class GeoPoint:
    """A geographic location of an input (Clarifai ``Geo.geo_point``)."""

    longitude: float
    latitude: float

    def __post_init__(self) -> None:
        try:
            lon, lat = float(self.longitude), float(self.latitude)
        except (TypeError, ValueError) as exc:
            raise RecordError(f"geo point ({self.longitude!r}, {self.latitude!r}) "
                              "is not numeric") from exc
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise RecordError(f"geo point ({lon}, {lat}) is outside longitude ±180 / latitude ±90")
        object.__setattr__(self, "longitude", lon)
        object.__setattr__(self, "latitude", lat)


@dataclass(frozen=True)
class Media:
    """The content of an input, read lazily.

    Exactly one of ``uri`` (``s3://``, ``https://``, a local path, any fsspec URL), ``data``
    (bytes) or ``text`` (raw text, only for kind ``text``). ``storage_options`` are passed to
    fsspec when the URI is read; they may hold credentials, so they never show in reprs and
    take no part in equality.
    """

    kind: str
    uri: str | None = None
    data: bytes | None = field(default=None, repr=False)
    text: str | None = None
    storage_options: Mapping[str, Any] | None = field(
        default=None, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in MEDIA_KINDS:
            raise RecordError(f"media kind {self.kind!r} is not one of {', '.join(MEDIA_KINDS)}")
        if self.data is None and self.text is None and type(self.uri) is str and self.uri:
            return  # the common case (a URI), checked in one line
        if type(self.data) is bytes and self.uri is None and self.text is None:
            return  # bytes (downloaded media), likewise
        given = [n for n in ("uri", "data", "text") if getattr(self, n) is not None]
        if len(given) != 1:
            raise RecordError(f"media needs exactly one of uri, data or text, got "
                              f"{', '.join(given) or 'none'}")
        if self.text is not None and self.kind != "text":
            raise RecordError(f"raw text given for a {self.kind} input")
        if self.uri is not None and (not isinstance(self.uri, str) or not self.uri):
            raise RecordError(f"media uri {self.uri!r} is not a non-empty string")
        if self.data is not None and not isinstance(self.data, bytes):
            if isinstance(self.data, (bytearray, memoryview)):
                object.__setattr__(self, "data", bytes(self.data))
            else:
                raise RecordError(f"media data is {type(self.data).__name__}, not bytes")

    @property
    def is_http(self) -> bool:
        """True when the media is an http(s) URL the API can fetch itself."""
        return bool(self.uri) and self.uri.split("://", 1)[0].lower() in ("http", "https")

    def read_bytes(self) -> bytes:
        """The content as bytes, reading the URI through fsspec (the only place media is read)."""
        if self.data is not None:
            return self.data
        if self.text is not None:
            return self.text.encode("utf-8")
        import fsspec  # local import: records stay importable without touching I/O

        with fsspec.open(self.uri, "rb", **dict(self.storage_options or {})) as handle:
            return handle.read()

    def read_text(self, encoding: str = "utf-8") -> str:
        """The content as text (raw text as is; bytes and URIs decoded with ``encoding``)."""
        if self.text is not None:
            return self.text
        return self.read_bytes().decode(encoding)

    def identity(self) -> str:
        """What identifies this media for fingerprints: the URI, a digest of bytes, or the text."""
        if self.uri is not None:
            return "uri:" + self.uri
        if self.data is not None:
            return "sha256:" + hashlib.sha256(self.data).hexdigest()
        return "text:" + hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Region:
    """An annotated part of an input: exactly one of ``box``, ``polygon``, ``mask`` or ``point``,
    with its ``concepts``. ``id`` is optional (the engine derives one from the record id when
    it is empty). A mask is an image (PNG) given as :class:`Media` or bytes."""

    box: Box | None = None
    polygon: tuple[Point, ...] = ()
    mask: Media | None = None
    point: Point | None = None
    concepts: tuple[Concept, ...] = ()
    id: str = ""

    def __post_init__(self) -> None:
        polygon = tuple(p if isinstance(p, Point) else Point(*p) for p in self.polygon)
        object.__setattr__(self, "polygon", polygon)
        if isinstance(self.mask, (bytes, bytearray, memoryview)):
            object.__setattr__(self, "mask", Media(kind="image", data=bytes(self.mask)))
        elif isinstance(self.mask, str):
            object.__setattr__(self, "mask", Media(kind="image", uri=self.mask))
        if isinstance(self.box, (tuple, list)):
            object.__setattr__(self, "box", Box(*self.box))
        if isinstance(self.point, (tuple, list)):
            object.__setattr__(self, "point", Point(*self.point))
        kinds = [k for k in ("box", "polygon", "mask", "point") if getattr(self, k)]
        if len(kinds) != 1:
            raise RecordError(f"a region needs exactly one of box, polygon, mask or point, got "
                              f"{', '.join(kinds) or 'none'}")
        if polygon and len(polygon) < 3:
            raise RecordError(f"a polygon needs at least 3 points, got {len(polygon)}")
        if self.mask is not None and self.mask.kind != "image":
            raise RecordError(f"a mask must be an image, got {self.mask.kind}")
        object.__setattr__(self, "concepts", _concepts(self.concepts))
        if self.id:
            problem = id_problem(self.id, "region id")
            if problem:
                raise RecordError(problem)

    @property
    def kind(self) -> str:
        """``box``, ``polygon``, ``mask`` or ``point``."""
        return next(k for k in ("box", "polygon", "mask", "point") if getattr(self, k))


_new = object.__new__
_set = object.__setattr__


def _point(row: float, col: float) -> Point:
    point = _new(Point)
    fields = point.__dict__  # a frozen dataclass refuses setattr, not its __dict__
    fields["row"] = row
    fields["col"] = col
    return point


def prechecked_polygon(rows: list[float], cols: list[float], concepts: tuple[Concept, ...],
                       region_id: str) -> Region:
    """A polygon Region built without re-validating each point, for a reader's hot path.

    The caller guarantees what ``Region(polygon=…)`` would check: ``rows`` and ``cols`` are
    floats within 0..1 (one bounds check per polygon, not one per value), at least 3 of each,
    ``concepts`` a tuple of Concepts, ``region_id`` a valid id (from :func:`stable_id`).
    """
    region = _new(Region)
    _set(region, "box", None)
    _set(region, "polygon", tuple(map(_point, rows, cols)))
    _set(region, "mask", None)
    _set(region, "point", None)
    _set(region, "concepts", concepts)
    _set(region, "id", region_id)
    return region


def _concepts(items: Iterable[Concept | str]) -> tuple[Concept, ...]:
    if type(items) is tuple:
        for item in items:
            if type(item) is not Concept:
                break
        else:
            return items  # already what it must be (the common case: nothing to build)
    out = []
    for item in items or ():
        out.append(item if isinstance(item, Concept) else Concept.named(item))
    return tuple(out)


def _metadata_json(metadata: Mapping[str, Any]) -> str:
    """The canonical JSON of ``metadata``; RecordError when it is not JSON-able."""
    if type(metadata) is dict and not metadata:
        return "{}"
    if not isinstance(metadata, Mapping):
        raise RecordError(f"metadata is {type(metadata).__name__}, not a mapping")
    for key in metadata:
        if not isinstance(key, str):
            raise RecordError(f"metadata key {key!r} is not a string")
    try:
        return _canonical_json(metadata)
    except RecursionError:  # the reused encoder keeps no cycle check: a cycle recurses
        raise RecordError("metadata is not JSON-able: it contains itself") from None
    except (TypeError, ValueError) as exc:
        raise RecordError(f"metadata is not JSON-able: {exc}") from exc


def _region_key(region: Region) -> list:
    # Plain lists, so the fingerprint is one json.dumps with no per-object callbacks.
    shape: Any
    if region.box is not None:
        b = region.box
        shape = [b.top_row, b.left_col, b.bottom_row, b.right_col]
    elif region.polygon:
        shape = [[p.row, p.col] for p in region.polygon]
    elif region.point is not None:
        shape = [region.point.row, region.point.col]
    else:
        shape = region.mask.identity()
    return [region.kind, shape, [[c.id, c.name, c.value] for c in region.concepts], region.id]


@dataclass(frozen=True)
class Record:
    """One input with its labels, as read from a source.

    ``id`` is stable (same source item, same id, on every run and machine). ``concepts``
    are input-level labels, ``regions`` the annotated parts. ``metadata`` is a JSON-able
    mapping. ``fingerprint`` identifies the state of the source item for change detection;
    when a reader leaves it empty it is computed from the record's content. ``source`` says
    where the item came from (``data.csv:17``, ``s3://b/k.jpg``) for error messages.
    """

    id: str
    media: Media
    concepts: tuple[Concept, ...] = ()
    regions: tuple[Region, ...] = ()
    # Left out of the hash (a dict is not hashable), so records can live in sets.
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    dataset_ids: tuple[str, ...] = ()
    fingerprint: str = ""
    source: str = ""
    geo: GeoPoint | None = None

    def __post_init__(self) -> None:
        try:
            self._validate()
        except RecordError as exc:
            raise RecordError(f"{_where(self.source, self.id)}: {exc}") from exc

    def _validate(self) -> None:
        problem = id_problem(self.id, "input id")
        if problem:
            raise RecordError(problem)
        if not isinstance(self.media, Media):
            raise RecordError(f"media is {type(self.media).__name__}, not Media")
        concepts = _concepts(self.concepts)
        if concepts is not self.concepts:
            object.__setattr__(self, "concepts", concepts)
        if type(self.regions) is not tuple or self.regions:  # () is common: nothing to do
            regions = tuple(self.regions or ())
            for region in regions:
                if not isinstance(region, Region):
                    raise RecordError(f"region {region!r} is not a Region")
            object.__setattr__(self, "regions", regions)
            _check_regions_kind(regions, self.media)
        metadata_json = _metadata_json(self.metadata)
        if type(self.dataset_ids) is not tuple or self.dataset_ids:
            dataset_ids = (self.dataset_ids,) if isinstance(self.dataset_ids, str) \
                else self.dataset_ids
            dataset_ids = tuple(dataset_ids or ())
            _check_dataset_ids(dataset_ids)
            object.__setattr__(self, "dataset_ids", dataset_ids)
        if isinstance(self.geo, (tuple, list)):
            object.__setattr__(self, "geo", GeoPoint(*self.geo))
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", self.content_fingerprint(metadata_json))

    @classmethod
    def from_parts(cls, id: str, media: Media, concepts: tuple[Concept, ...] = (),
                   regions: tuple[Region, ...] = (), metadata: dict[str, Any] | None = None,
                   dataset_ids: tuple[str, ...] = (), source: str = "",
                   geo: GeoPoint | None = None, fingerprint: str = "") -> Record:
        """A record from parts already of the field types (a Media; tuples of Concepts
        and Regions, which checked themselves when built; a GeoPoint; a plain dict), as
        the reader of API protos builds them: what those types do not guarantee is
        checked as the constructor checks it (the input and dataset ids, regions only on
        images and videos, JSON-able metadata), the conversions the constructor would make
        are skipped, and the fingerprint, unless given (a connector's own), is computed
        when first read (an export never reads it). RecordError names ``source``."""
        try:
            problem = id_problem(id, "input id")
            if problem:
                raise RecordError(problem)
            _check_regions_kind(regions, media)
            if metadata:
                _metadata_json(metadata)
            _check_dataset_ids(dataset_ids)
        except RecordError as exc:
            raise RecordError(f"{_where(source, id)}: {exc}") from exc
        record = object.__new__(cls)
        record.__dict__.update(id=id, media=media, concepts=concepts, regions=regions,
                               metadata=metadata if metadata is not None else {},
                               dataset_ids=dataset_ids, source=source, geo=geo)
        if fingerprint:
            record.__dict__["fingerprint"] = fingerprint
        return record

    def with_media(self, media: Media, regions: tuple[Region, ...] | None = None) -> Record:
        """This record with its media (and ``regions``, when given) in another form of
        the same content (downloaded bytes for a URI): nothing else changes, so nothing
        is checked again; an unread fingerprint stays unread."""
        record = object.__new__(type(self))
        record.__dict__.update(self.__dict__)
        record.__dict__["media"] = media
        if regions is not None:
            record.__dict__["regions"] = regions
        return record

    def __getattr__(self, name: str) -> Any:
        # Reached only for an attribute the instance does not hold: the fingerprint of a
        # record made by from_parts, computed (and kept) on first read.
        if name == "fingerprint" and "media" in self.__dict__:
            value = self.content_fingerprint()
            object.__setattr__(self, "fingerprint", value)
            return value
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def content_fingerprint(self, metadata_json: str | None = None) -> str:
        """A digest of everything this record would send: media identity, labels, metadata."""
        if metadata_json is None:
            metadata_json = _metadata_json(self.metadata)
        geo = [self.geo.longitude, self.geo.latitude] if self.geo else None
        parts = [self.media.kind, self.media.identity(),
                 [[c.id, c.name, c.value] for c in self.concepts],
                 [_region_key(r) for r in self.regions], list(self.dataset_ids), geo]
        payload = _compact_json(parts) + metadata_json
        return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# The default lives in __init__'s signature; without the class attribute, a record that
# holds no fingerprint yet reaches __getattr__, which computes it.
del Record.fingerprint


def _where(source: str, record_id: Any) -> str:
    return source or (f"record '{record_id}'" if isinstance(record_id, str) else "record")


def _check_regions_kind(regions: tuple[Region, ...], media: Media) -> None:
    if regions and media.kind not in ("image", "video"):
        raise RecordError(f"regions given for a {media.kind} input")


def _check_dataset_ids(dataset_ids: tuple[str, ...]) -> None:
    for dataset_id in dataset_ids:
        problem = id_problem(dataset_id, "dataset id")
        if problem:
            raise RecordError(problem)


@dataclass(frozen=True)
class Problem:
    """A broken source item, yielded by a reader in place of a record: ``source`` is where
    (``data.csv:17``), ``reason`` is why, ``id`` the record id when it was known."""

    source: str
    reason: str
    id: str = ""

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


NOTICE_KINDS = ("ignored", "repaired")


@dataclass(frozen=True)
class Notice:
    """Something a reader did that is neither a record nor a failure, yielded beside them.

    ``kind`` is ``ignored`` (a file of the source that is no item of this format: a README,
    a ``.DS_Store``) or ``repaired`` (a value of the record ``id`` that meant one thing only
    and was made valid: a box with a negative width, a box reaching past the image's edge).
    ``source`` is where, ``reason`` what. Reports count notices apart from the buckets: a
    repaired record is still created, updated or skipped like any other.
    """

    kind: str
    source: str
    reason: str
    id: str = ""

    def __post_init__(self) -> None:
        if self.kind not in NOTICE_KINDS:
            raise RecordError(f"notice kind {self.kind!r} is not one of {', '.join(NOTICE_KINDS)}")

    def __str__(self) -> str:
        return f"{self.source}: {self.kind}: {self.reason}"
