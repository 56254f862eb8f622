"""One COCO annotation → regions, input-level concepts, captions and metadata.

Pixel coordinates become 0..1 with the image's width and height; values up to one pixel
outside the image are clamped (COCO files often overshoot by rounding). A box further out
but mostly inside is clipped, and one with a negative width or height normalized, both
reported as repairs (:mod:`connectors.boxes`); other coordinates further out are errors. What a Region cannot hold (the COCO annotation id, ``iscrowd``, keypoint
names and visibility, ``attributes``, extra keys) goes into the record's metadata, keyed by
region id, so an exporter can write the annotation back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clarifai_connect.records import (
    Box,
    Concept,
    Point,
    RecordError,
    Region,
    prechecked_polygon,
    stable_id,
)

from .boxes import repair_box
from .masks import MaskError, rle_to_png

__all__ = ["Category", "Converted", "convert_annotation", "normalize"]

# Keys read into regions/concepts; every other key of an annotation is kept in metadata.
_CONSUMED = frozenset({"id", "image_id", "category_id", "segmentation", "bbox", "area",
                       "iscrowd", "keypoints", "num_keypoints", "caption", "attributes",
                       "image_label"})
# The keys of a plain instance annotation: nothing for metadata but the entry itself.
_PLAIN = frozenset({"id", "image_id", "category_id", "segmentation", "bbox", "area", "iscrowd"})


@dataclass(frozen=True)
class Category:
    """A COCO category: its concept, supercategory and keypoint names."""

    concept: Concept
    supercategory: str = ""
    keypoints: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Category:
        """A category from its COCO JSON object (RecordError when its name is missing)."""
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise RecordError(f"category {item.get('id')!r} has no name")
        points = item.get("keypoints") or ()
        return cls(concept=Concept.named(name), supercategory=str(item.get("supercategory") or ""),
                   keypoints=tuple(str(p) for p in points))

    def keypoint_name(self, index: int) -> str:
        """The name of keypoint ``index`` (0-based); unnamed ones are ``<category>-keypoint-<n>``
        with ``n`` 1-based, as in COCO skeletons."""
        if index < len(self.keypoints) and self.keypoints[index]:
            return self.keypoints[index]
        return f"{self.concept.name}-keypoint-{index + 1}"


@dataclass
class Converted:
    """What one image's annotations became."""

    regions: list[Region] = field(default_factory=list)
    concepts: dict[str, Concept] = field(default_factory=dict)
    captions: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    repairs: list[tuple[Any, str]] = field(default_factory=list)  # (annotation id, what)


def normalize(value: Any, size: float, what: str) -> float:
    """Pixel ``value`` as a fraction of ``size``, clamped when at most one pixel outside."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"{what} {value!r} is not a number") from exc
    if not -1.0 <= number <= size + 1.0:
        raise RecordError(f"{what} {number:g} is outside the image (0..{size:g})")
    return min(max(number / size, 0.0), 1.0)


def _box(bbox: Any, width: float, height: float) -> tuple[Box, list[str]]:
    """The box of a COCO ``bbox`` and its repairs (a negative width or height normalized,
    a box past the edge clipped: see :func:`~connectors.boxes.repair_box`)."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        raise RecordError(f"bbox {bbox!r} is not [x, y, width, height]")
    x, y, w, h = bbox
    try:
        right, bottom = float(x) + float(w), float(y) + float(h)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"bbox {bbox!r} has a value that is not a number") from exc
    shown = "[" + ", ".join(f"{float(v):g}" for v in bbox) + "]"
    return repair_box(x, y, right, bottom, width, height, what=f"bbox {shown}",
                      names=("bbox x", "bbox y", "bbox right", "bbox bottom"))


def _polygon(flat: Any, width: float, height: float) -> tuple[list[float], list[float]]:
    """The rows and columns (0..1) of a flat COCO polygon ``[x1, y1, x2, y2, …]``."""
    if not isinstance(flat, (list, tuple)) or len(flat) % 2:
        raise RecordError("a polygon is not a flat list of x, y pairs")
    if len(flat) < 6:
        raise RecordError(f"a polygon has {len(flat) // 2} points, at least 3 are needed")
    try:
        xs, ys = [float(v) for v in flat[0::2]], [float(v) for v in flat[1::2]]
    except (TypeError, ValueError) as exc:
        raise RecordError("a polygon has a value that is not a number") from exc
    # Bounds checked once per polygon (the hot path of big files), per point only on error.
    low_x, high_x, low_y, high_y = min(xs), max(xs), min(ys), max(ys)
    if 0.0 <= low_x and high_x <= width and 0.0 <= low_y and high_y <= height:
        return [y / height for y in ys], [x / width for x in xs]
    if not (-1.0 <= low_x and high_x <= width + 1.0 and -1.0 <= low_y
            and high_y <= height + 1.0):
        for x, y in zip(xs, ys, strict=True):
            normalize(x, width, "polygon x")
            normalize(y, height, "polygon y")
    return ([min(max(y / height, 0.0), 1.0) for y in ys],
            [min(max(x / width, 0.0), 1.0) for x in xs])


def _mask(rle: Mapping[str, Any]) -> bytes:
    size = rle.get("size")
    counts = rle.get("counts")
    if not (isinstance(size, (list, tuple)) and len(size) == 2) or counts is None:
        raise RecordError("an RLE segmentation needs 'size' [height, width] and 'counts'")
    try:
        return rle_to_png(counts, int(size[0]), int(size[1]))
    except (MaskError, TypeError, ValueError) as exc:
        raise RecordError(f"RLE segmentation: {exc}") from exc


def convert_annotation(ann: Mapping[str, Any], *, task: str, record_id: str,
                       categories: Mapping[Any, Category], width: float | None,
                       height: float | None, include_boxes: bool, out: Converted) -> None:
    """Add what ``ann`` holds to ``out``; RecordError (nothing added) when it is broken.

    ``width``/``height`` may be None only for annotations without coordinates (captions,
    image labels): the caller learns they are needed from :func:`needs_size`.
    """
    ann_id = ann.get("id")
    if "caption" in ann:
        caption = ann["caption"]
        if not isinstance(caption, str):
            raise RecordError(f"caption {caption!r} is not text")
        out.captions.append({"id": ann_id, "caption": caption})
        return
    if "segments_info" in ann:
        raise RecordError("panoptic annotations (segments_info) are not read: use the "
                          "instances file of the same split")
    category_id = ann.get("category_id")
    category = categories.get(category_id) if isinstance(category_id, (int, str)) else None
    if category is None:
        raise RecordError(f"category_id {category_id!r} is not in the file's categories")
    entry: dict[str, Any] = {"id": ann_id, "task": task, "category_id": category_id}
    if category.supercategory:
        entry["supercategory"] = category.supercategory
    # Most annotations hold only the keys of a plain instance: the other checks are skipped.
    plain = ann.keys() <= _PLAIN
    if not plain:
        attributes = ann.get("attributes")
        if attributes and isinstance(attributes, Mapping):
            entry["attributes"] = dict(attributes)
        if not ann.keys() <= _CONSUMED:
            entry["extra"] = {k: v for k, v in ann.items() if k not in _CONSUMED}
    segmentation, bbox = ann.get("segmentation"), ann.get("bbox")
    keypoints = None if plain else ann.get("keypoints")
    if not _has_geometry(segmentation, bbox, keypoints) or \
            (not plain and ann.get("image_label") is True):
        # No geometry at all, or the whole image marked so (as the coco exporter writes
        # labels, so that COCO tools find every key they require): an image-level label.
        out.concepts.setdefault(category.concept.id, category.concept)
        entry["image_label"] = True
        out.annotations.append(entry)
        return
    if not width or not height:
        raise RecordError("the image's width and height are unknown")
    base = f"{record_id}-{task}-{ann_id}"
    regions: list[Region] = []

    def region_id() -> str:
        return stable_id(base if not regions else f"{base}-{len(regions)}")

    crowd = ann.get("iscrowd") or 0
    if crowd not in (0, 1):
        raise RecordError(f"iscrowd {crowd!r} is not 0 or 1")
    if crowd:
        entry["iscrowd"] = int(crowd)
    concepts = (category.concept,)
    if isinstance(segmentation, dict):
        regions.append(Region(mask=_mask(segmentation), concepts=concepts, id=region_id()))
    elif isinstance(segmentation, (list, tuple)):
        for flat in segmentation:
            rows, cols = _polygon(flat, width, height)
            # rows and cols are floats within 0..1, at least 3: no check per point again
            regions.append(prechecked_polygon(rows, cols, concepts, region_id()))
    elif segmentation is not None:
        raise RecordError(f"segmentation {segmentation!r:.40} is neither polygons nor RLE")
    repairs: list[str] = []
    if bbox is not None and (include_boxes or not regions):
        box, repairs = _box(bbox, width, height)
        regions.append(Region(box=box, concepts=(category.concept,), id=region_id()))
    entry["regions"] = [r.id for r in regions]
    if keypoints:
        if not isinstance(keypoints, (list, tuple)) or len(keypoints) % 3:
            raise RecordError("keypoints is not a flat list of x, y, visibility triplets")
        named = []
        for index in range(len(keypoints) // 3):
            x, y, visibility = keypoints[3 * index: 3 * index + 3]
            if not visibility:
                continue  # COCO: v=0 means not labelled (x = y = 0)
            name = category.keypoint_name(index)
            point = Point(row=normalize(y, height, "keypoint y"),
                          col=normalize(x, width, "keypoint x"))
            rid = region_id()
            regions.append(Region(point=point, concepts=(Concept.named(name),), id=rid))
            named.append({"region": rid, "name": name, "index": index,
                          "visibility": int(visibility)})
        entry["keypoints"] = named
    if not regions:
        raise RecordError("no bbox, segmentation or labelled keypoint to place the label on")
    out.regions.extend(regions)
    out.annotations.append(entry)
    out.repairs.extend((ann_id, r) for r in repairs)


def needs_size(ann: Mapping[str, Any]) -> bool:
    """Whether ``ann`` has pixel coordinates (so the image size must be known); the whole
    image of a label marked ``image_label`` (as the coco exporter writes them) has none."""
    if "caption" in ann or ann.get("image_label") is True:
        return False
    return _has_geometry(ann.get("segmentation"), ann.get("bbox"), ann.get("keypoints"))


def _has_geometry(segmentation: Any, bbox: Any, keypoints: Any) -> bool:
    return bool(bbox is not None or keypoints or segmentation or isinstance(segmentation, dict))
