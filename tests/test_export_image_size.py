"""The image size an export writes (COCO width/height) is the one PIL reads, whether it
comes from the quick header reading (PNG, JPEG) or from PIL itself, and what PIL cannot
open fails the same way."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from clarifai_connect.exports.files import _header_size, image_size


def _encoded(fmt: str, size: tuple[int, int], **options) -> bytes:
    out = io.BytesIO()
    mode = "P" if fmt == "GIF" else "RGB"
    Image.new(mode, size).save(out, format=fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize("fmt, options", [
    ("PNG", {}), ("GIF", {}), ("JPEG", {}), ("JPEG", {"progressive": True}),
    ("JPEG", {"exif": Image.Exif().tobytes(), "quality": 30}), ("BMP", {}), ("WEBP", {}),
    ("TIFF", {}),
])
@pytest.mark.parametrize("size", [(1, 1), (3, 2), (641, 480), (70000, 1)])
def test_the_size_is_pils(fmt, options, size):
    if fmt in ("GIF", "JPEG", "WEBP") and size[0] > 65535:
        pytest.skip("beyond the format's limit")
    data = _encoded(fmt, size, **options)
    with Image.open(io.BytesIO(data)) as image:
        assert image_size(data) == image.size == size
    if fmt in ("PNG", "JPEG"):
        assert _header_size(data) == size  # read from the header, not by PIL


def test_a_jpeg_with_markers_before_its_frame(tmp_path):
    data = _encoded("JPEG", (5, 7))
    # An APP segment and fill bytes before the frame header are stepped over.
    padded = data[:2] + b"\xff\xe1\x00\x06abcd" + b"\xff" + data[2:]
    assert _header_size(padded) == (5, 7)


def _cut(fmt: str, keep: int) -> bytes:
    return _encoded(fmt, (4, 4))[:keep]


@pytest.mark.parametrize("data", [
    b"", b"not an image", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\x00", b"GIF89a broken",
    _cut("PNG", 30), _cut("PNG", 33),  # a cut IHDR; an IHDR and nothing after it
    _cut("JPEG", 40),  # cut before its frame header
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17),  # a wrong checksum
])
def test_what_pil_cannot_open_is_a_value_error(data):
    assert _header_size(data) is None
    with pytest.raises(ValueError, match="not a readable image"):
        image_size(data)
