"""Regions as SVG shapes: boxes, polygons, points and masks over an image, one colour per
concept. Coordinates stay normalized (0..1, as stored): the SVG's viewBox is the unit
square stretched over the image, so one overlay fits the thumbnail and the full image."""

from __future__ import annotations

import colorsys
import hashlib
from dataclasses import dataclass, field
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2


def colour(concept_id: str) -> str:
    """A stable colour for a concept (``#rrggbb``), spread over the hue circle."""
    hue = int.from_bytes(hashlib.sha256(concept_id.encode()).digest()[:2], "big") / 65536
    r, g, b = colorsys.hls_to_rgb(hue, 0.5, 0.85)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


@dataclass
class Shape:
    """One region, ready to draw and to list."""

    kind: str  # box, polygon, point, mask
    annotation_id: str
    concepts: list[tuple[str, str, float]]  # (id, name, value)
    colour: str
    points: str = ""  # polygon: "x,y x,y …"; box: "x y w h"; point: "x,y"
    coordinates: str = ""  # what the region list shows
    extra: dict[str, Any] = field(default_factory=dict)


def _concepts(data: resources_pb2.Data) -> list[tuple[str, str, float]]:
    return [(c.id, c.name or c.id, c.value) for c in data.concepts]


def _f(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


def shapes(annotations: list[resources_pb2.Annotation]) -> list[Shape]:
    """Every region of ``annotations`` as a shape (regions without geometry left out)."""
    out = []
    for ann in annotations:
        for region in ann.data.regions:
            info = region.region_info
            found = _concepts(region.data)
            tint = colour(found[0][0]) if found else "#888888"
            if info.HasField("bounding_box"):
                b = info.bounding_box
                out.append(Shape(
                    "box", ann.id, found, tint,
                    points=f"{_f(b.left_col)} {_f(b.top_row)} {_f(b.right_col - b.left_col)} "
                           f"{_f(b.bottom_row - b.top_row)}",
                    coordinates=f"top {_f(b.top_row)}, left {_f(b.left_col)}, "
                                f"bottom {_f(b.bottom_row)}, right {_f(b.right_col)}"))
            elif info.HasField("polygon"):
                pts = [(p.col, p.row) for p in info.polygon.points]
                out.append(Shape("polygon", ann.id, found, tint,
                                 points=" ".join(f"{_f(x)},{_f(y)}" for x, y in pts),
                                 coordinates=f"{len(pts)} points: " + ", ".join(
                                     f"({_f(y)}, {_f(x)})" for x, y in pts[:4])
                                 + (" …" if len(pts) > 4 else "")))
            elif info.HasField("point"):
                p = info.point
                out.append(Shape("point", ann.id, found, tint, points=f"{_f(p.col)},{_f(p.row)}",
                                 coordinates=f"row {_f(p.row)}, col {_f(p.col)}"))
            elif info.HasField("mask"):
                out.append(Shape("mask", ann.id, found, tint, coordinates="mask image",
                                 extra={"region": region.id}))
    return sorted(out, key=lambda shape: shape.kind != "mask")  # masks under the outlines


def labels(item: Any) -> list[tuple[str, str, float]]:
    """Input-level labels: the input's own concepts and those of annotations without
    regions, each (id, value) once."""
    found = _concepts(item.input.data)
    for ann in item.annotations:
        if not ann.data.regions:
            found += _concepts(ann.data)
    return list({(cid, value): (cid, name, value) for cid, name, value in found}.values())


def legend(shape_list: list[Shape]) -> list[tuple[str, str, str]]:
    """(concept id, name, colour) of every concept drawn, in first-seen order."""
    seen: dict[str, tuple[str, str, str]] = {}
    for shape in shape_list:
        if shape.concepts:
            cid, name, _ = shape.concepts[0]
            seen.setdefault(cid, (cid, name, shape.colour))
    return list(seen.values())
