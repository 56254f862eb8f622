"""Masks as Clarifai stores them: a PNG the size of the image, 255 inside, 0 outside.

COCO run-length encodings (plain ``counts`` lists and the compressed string form of
pycocotools) and colour/index-coded segmentation PNGs (Pascal VOC) become such PNGs here.
Pillow does the PNG work; runs are expanded with bytes operations, not per-pixel loops.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "MaskError",
    "binary_png",
    "colour_index",
    "decode_rle_string",
    "encode_rle_string",
    "png_to_rle",
    "rle_to_png",
    "segmentation_layers",
    "voc_colormap",
]


class MaskError(ValueError):
    """A mask could not be decoded (bad RLE, unreadable PNG)."""


def decode_rle_string(text: str) -> list[int]:
    """The run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString``)."""
    counts: list[int] = []
    pos, size = 0, len(text)
    while pos < size:
        value, shift, more = 0, 0, True
        while more:
            if pos >= size:
                raise MaskError("compressed RLE string ends inside a number")
            c = ord(text[pos]) - 48
            if not 0 <= c < 64:
                raise MaskError(f"compressed RLE has an invalid character {text[pos]!r}")
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            pos += 1
            shift += 1
            if not more and (c & 0x10):
                value |= -1 << (5 * shift)
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def rle_to_png(counts: Sequence[int] | str, height: int, width: int) -> bytes:
    """A 0/255 PNG from a COCO RLE: runs alternate 0 and 1, column-major, starting with 0."""
    from PIL import Image

    if isinstance(counts, str):
        counts = decode_rle_string(counts)
    height, width = int(height), int(width)
    if height <= 0 or width <= 0:
        raise MaskError(f"RLE size {height}x{width} is not positive")
    total = height * width
    parts = []
    filled = 0
    for index, run in enumerate(counts):
        run = int(run)
        if run < 0:
            raise MaskError(f"RLE run {index} is negative ({run})")
        filled += run
        parts.append((b"\xff" if index % 2 else b"\x00") * run)
    if filled != total:
        raise MaskError(f"RLE runs cover {filled} pixels, the {height}x{width} mask has {total}")
    # Column-major bytes are a width×height image stored row by row; transposing fixes it.
    columns = Image.frombytes("L", (height, width), b"".join(parts))
    return _png(columns.transpose(Image.Transpose.TRANSPOSE))


def _png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def voc_colormap(size: int = 256) -> list[tuple[int, int, int]]:
    """The Pascal VOC palette: colour ``i`` encodes class or object index ``i``."""
    colours = []
    for index in range(size):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        colours.append((r, g, b))
    return colours


_COLOUR_INDEX = {colour: index for index, colour in enumerate(voc_colormap())}


def colour_index(colour: tuple[int, int, int]) -> int | None:
    """The index a VOC colour-map colour stands for, or None when it is not in the map."""
    return _COLOUR_INDEX.get(tuple(colour))


def segmentation_layers(data: bytes) -> tuple[tuple[int, int], dict[Any, bytes]]:
    """Split a segmentation PNG into one 0/255 PNG per value present.

    Palette ("P") and grayscale images are split by index (keys are ints), colour images by
    colour (keys are ``(r, g, b)``; :func:`colour_index` maps VOC colours to indexes).
    Returns the image size (width, height) and the layers.
    """
    from PIL import Image, ImageChops, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise MaskError(f"not a readable image: {exc}") from exc
    if image.mode in ("P", "L"):
        indexed = image if image.mode == "L" else Image.frombytes("L", image.size, image.tobytes())
        present = sorted(index for _, index in indexed.getcolors(256) or [])
        return image.size, {index: binary_png(indexed, [index]) for index in present}
    rgb = image.convert("RGB")
    colours = rgb.getcolors(1 << 16)
    if colours is None:
        raise MaskError("more than 65536 colours: not a segmentation mask")
    channels = rgb.split()
    layers: dict[Any, bytes] = {}
    for _, colour in sorted(colours, key=lambda c: c[1]):
        # A pixel is in the layer when all three channels match (255 * 255 * 255 → 255).
        planes = [ch.point([255 if v == want else 0 for v in range(256)])
                  for ch, want in zip(channels, colour, strict=True)]
        layer = ImageChops.multiply(ImageChops.multiply(planes[0], planes[1]), planes[2])
        layers[colour] = _png(layer)
    return image.size, layers


def binary_png(indexed, indexes: Iterable[int]) -> bytes:
    """A 0/255 PNG of the pixels of an "L" image whose value is in ``indexes``."""
    wanted = set(indexes)
    table = [255 if value in wanted else 0 for value in range(256)]
    return _png(indexed.point(table))


def encode_rle_string(counts: Sequence[int]) -> str:
    """The compressed COCO RLE string of run lengths (pycocotools' ``rleToString``)."""
    out = []
    for index, value in enumerate(counts):
        value = int(value)
        if index > 2:
            value -= int(counts[index - 2])
        more = True
        while more:
            c = value & 0x1F
            value >>= 5
            more = (value != -1) if (c & 0x10) else (value != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def png_to_rle(data: bytes) -> tuple[list[int], int, int]:
    """A mask PNG (any non-zero pixel is inside) as COCO RLE ``(counts, height, width)``."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise MaskError(f"not a readable image: {exc}") from exc
    gray = image.convert("L").point([0] + [1] * 255)
    column_major = gray.transpose(Image.Transpose.TRANSPOSE).tobytes()
    counts: list[int] = []
    current, run = 0, 0
    # Runs of equal bytes: find each change with bytes.find instead of a per-pixel loop.
    pos, total = 0, len(column_major)
    while pos < total:
        needle = b"\x01" if current == 0 else b"\x00"
        nxt = column_major.find(needle, pos)
        end = total if nxt < 0 else nxt
        run = end - pos
        counts.append(run)
        current ^= 1
        pos = end
    if not counts:
        counts.append(0)
    width, height = image.size
    return counts, height, width
