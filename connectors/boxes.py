"""Boxes from annotation files: the unambiguous mistakes repaired and named, the rest refused.

Annotation tools write boxes with a negative width or height (dragged right to left, or
upwards) and boxes that reach past the image's edge. Each of those still means one box:
:func:`repair_box` turns it into that box and says what it did, so the connector can report
the record as ``repaired`` (see :class:`~clarifai_connect.records.Notice`). What means
nothing certain stays an error (:class:`RecordError`): a value that is not a finite number,
a box of zero width or height, a box wholly outside the image, and a box more than half
outside it (clipping would keep a different object).
"""

from __future__ import annotations

import math
from typing import Any

from clarifai_connect.records import Box, RecordError

__all__ = ["repair_box"]

# Less than half of a box inside the image: clipping would no longer be the same box.
MIN_INSIDE = 0.5


def _number(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"{what} {value!r} is not a number") from exc
    if not math.isfinite(number):
        raise RecordError(f"{what} {value!r} is not a finite number")
    return number


def repair_box(x0: Any, y0: Any, x1: Any, y1: Any, width: float, height: float, *,
               what: str = "box", names: tuple[str, str, str, str] = ("x", "y", "right",
                                                                      "bottom"),
               tolerance: float = 1.0) -> tuple[Box, list[str]]:
    """The box with corners ``(x0, y0)`` and ``(x1, y1)`` in an image of ``width`` ×
    ``height`` (pixels, or 1 × 1 for normalized values), normalized to 0..1, and the repairs
    made (empty when none). Corners given the wrong way round are swapped; a box past the
    edge by more than ``tolerance`` is clipped and named (within it, clamped silently: files
    overshoot by rounding). ``what`` names the box in repairs, ``names`` its four values in
    errors (``xmin``…, or ``bbox x``…).
    """
    x0, y0 = _number(x0, names[0]), _number(y0, names[1])
    x1, y1 = _number(x1, names[2]), _number(y1, names[3])
    repairs = []
    if x1 < x0:
        x0, x1 = x1, x0
        repairs.append(f"{what}: negative width normalized")
    if y1 < y0:
        y0, y1 = y1, y0
        repairs.append(f"{what}: negative height normalized")
    if x1 == x0 or y1 == y0:
        raise RecordError(f"{what} has zero area ({x1 - x0:g} × {y1 - y0:g})")
    left, top = max(x0, 0.0), max(y0, 0.0)
    right, bottom = min(x1, width), min(y1, height)
    past = [(-x0, names[0], x0, width), (-y0, names[1], y0, height),
            (x1 - width, names[2], x1, width), (y1 - height, names[3], y1, height)]
    overflow, name, value, size = max(past)
    wholly = right <= left or bottom <= top
    inside = 0.0 if wholly else (right - left) * (bottom - top) / ((x1 - x0) * (y1 - y0))
    if inside < MIN_INSIDE:
        how = "wholly" if wholly else f"mostly ({inside:.0%} inside)"
        raise RecordError(f"{name} {value:g} is outside the image (0..{size:g}): the box is "
                          f"{how} outside")
    if overflow > tolerance:
        repairs.append(f"{what}: reached {overflow:g} past the image's edge, clipped")
    return Box(top_row=top / height, left_col=left / width, bottom_row=bottom / height,
               right_col=right / width), repairs
