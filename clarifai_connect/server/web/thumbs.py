"""Thumbnails and tinted masks, generated once (Pillow) and cached under the data dir.

Cache files are named by the stored media key (64 hex digits, never a name from a URL),
so nothing outside ``data_dir/web-cache`` is ever written or served from here.
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from .. import media_blobs

THUMB_SIZE = 320
_KEY = re.compile(r"^[0-9a-f]{64}$")
_COLOUR = re.compile(r"^[0-9a-f]{6}$")


def _cached(server: Any, name: str, key: str, db: Any,
            make: Callable[[Image.Image], bytes]) -> bytes | None:
    """The cache file ``name``, made once from the image stored under ``key``."""
    folder = Path(server.data_dir) / "web-cache"
    path = folder / name
    if path.exists():
        return path.read_bytes()
    try:
        with Image.open(io.BytesIO(media_blobs.read(server, key, db))) as image:
            data = make(image)
    except (KeyError, OSError, ValueError, Image.DecompressionBombError):
        return None
    folder.mkdir(exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the whole file or none
    return data


def _jpeg(image: Image.Image) -> bytes:
    image.thumbnail((THUMB_SIZE, THUMB_SIZE))
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


def thumbnail(server: Any, key: str, db: Any) -> bytes | None:
    """A JPEG thumbnail of the image stored under ``key`` (None when it is not an image)."""
    if not _KEY.match(key):
        return None
    return _cached(server, f"{key}.jpg", key, db, _jpeg)


def tinted_mask(server: Any, key: str, tint: str, db: Any) -> bytes | None:
    """The mask stored under ``key`` as a PNG: its set pixels in ``tint`` (6 hex digits,
    half transparent), the rest clear."""
    if not _KEY.match(key) or not _COLOUR.match(tint):
        return None

    def make(image: Image.Image) -> bytes:
        alpha = image.convert("L").point(lambda v: 140 if v else 0)
        rgba = Image.new("RGBA", alpha.size,
                         tuple(int(tint[i:i + 2], 16) for i in (0, 2, 4)))
        rgba.putalpha(alpha)
        out = io.BytesIO()
        rgba.save(out, "PNG")
        return out.getvalue()

    return _cached(server, f"{key}-{tint}.png", key, db, make)
