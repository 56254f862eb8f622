"""No silent zero: what to say when a connector read nothing from a folder that holds files.

A run that reads 0 items from a folder with files in it is an error, never an "ok, 0
items": :func:`nothing_read` names what the folder holds (counted by extension, within a
few levels), what the connector looks for (its ``looks_for``), and the format detection
would pick instead ("found 3 .xml files beside images; did you mean --format voc?").
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Mapping
from typing import Any

from .connector import display_uri, filesystem
from .errors import ClarifaiConnectError

__all__ = ["nothing_read"]

_DEPTH = 3
_MAX_FILES = 20_000  # enough to describe a folder; a census must not crawl a bucket
_IMAGES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
_SHOWN = 4


def _census(fs: Any, root: str) -> tuple[Counter, Counter, int]:
    """Files by extension, the extensions found in folders that hold images, and the total."""
    by_ext: Counter = Counter()
    beside: Counter = Counter()
    total = 0
    for _, _, files in fs.walk(root, maxdepth=_DEPTH, detail=False):
        exts = [posixpath.splitext(f)[1].lower() or posixpath.basename(f) for f in files]
        by_ext.update(exts)
        if any(e in _IMAGES for e in exts):
            beside.update(e for e in exts if e not in _IMAGES)
        total += len(files)
        if total >= _MAX_FILES:
            break
    return by_ext, beside, total


def nothing_read(uri: str, format: str, storage_options: Mapping[str, Any] | None = None,
                 registry: Any = None) -> str | None:
    """The error for reading 0 items from ``uri`` with connector ``format``, or None when
    there is nothing to say (the source is no folder, or an empty one)."""
    try:
        fs, root = filesystem(uri, storage_options)
        if not fs.isdir(root):
            return None
        by_ext, beside, total = _census(fs, root.rstrip("/") or "/")
    except (OSError, ClarifaiConnectError, ValueError):
        return None
    if not total:
        return None
    parts = []
    for ext, count in by_ext.most_common(_SHOWN):
        name = ext if ext.startswith(".") else f"'{ext}'"
        where = " beside images" if ext not in _IMAGES and beside.get(ext) == count else ""
        parts.append(f"{count} {name} file{'s' if count != 1 else ''}{where}")
    rest = total - sum(n for _, n in by_ext.most_common(_SHOWN))
    found = ", ".join(parts) + (f" and {rest} more" if rest > 0 else "")
    looks_for = ""
    hint = ""
    if registry is not None:
        try:
            cls = registry.connector(format).cls
            looks_for = getattr(cls, "looks_for", "") or ""
        except ClarifaiConnectError:
            pass
        try:
            closest = registry.detect_format(uri, storage_options)
        except ClarifaiConnectError:
            closest = None
        if closest and closest != format:
            hint = f"; did you mean --format {closest}?"
    looked = f" (it looks for {looks_for})" if looks_for else ""
    return (f"read 0 items from {display_uri(uri)} with the {format} connector{looked}, "
            f"but the folder is not empty: found {found}{hint}")
