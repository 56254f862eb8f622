"""Finding a dataset's files the way tools lay them out: a bounded walk, splits, images.

Exports put their files in many places (``train/_annotations.coco.json``,
``annotations/instances_default.json``, ``Annotations/`` or ``annotations/``, XML beside
each image, ``images/<split>/`` or ``<split>/images/``). Connectors look for their files by
content within a few levels of the root (:func:`walk_bounded`), take the split from a folder
or file name (:func:`split_from_parts`) and tell images from the rest by extension.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

__all__ = ["DETECT_FOLDERS", "DetectsByReason", "IMAGE_EXTENSIONS", "IMAGE_FOLDERS", "MAX_DEPTH", "SPLITS", "is_image", "relative",
           "split_from_parts", "walk_bounded"]

# What Ultralytics reads as images (and so what YOLO, COCO and VOC exports hold).
IMAGE_EXTENSIONS = (".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp",
                    ".pfm", ".heic", ".gif")
# Folder (or file-name) words that name a split, as tools write them.
SPLITS = ("train", "training", "val", "valid", "validation", "test", "testing", "trainval")
# Folders that hold images (or masks), not annotation files: not entered when looking.
IMAGE_FOLDERS = frozenset({"images", "JPEGImages", "data", "SegmentationObject",
                           "SegmentationClass", "masks"})
# How many folders detection lists at most.
DETECT_FOLDERS = 24
# How deep connectors look for their files below the root: deep enough for
# ``<root>/<split>/annotations/x.json``, shallow enough never to crawl a whole disk.
MAX_DEPTH = 3


def is_image(name: str) -> bool:
    """Whether ``name`` has an image extension."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def relative(root: str, path: str) -> str:
    """``path`` relative to the folder ``root`` (both fsspec paths)."""
    root = root.rstrip("/")
    if path.rstrip("/") == root:
        return ""
    if root and path.startswith(root + "/"):
        return path[len(root) + 1:]
    return path.lstrip("/")


def split_from_parts(parts: list[str] | tuple[str, ...]) -> str:
    """The first of ``parts`` (folder names, outermost first) that names a split, else ``""``."""
    for part in parts:
        if part.lower() in SPLITS:
            return part
    return ""


def walk_bounded(fs: Any, root: str, depth: int = MAX_DEPTH, skip: frozenset[str] = frozenset(),
                 max_folders: int | None = None
                 ) -> Iterator[tuple[str, list[str], list[str]]]:
    """``(folder, subfolder names, file names)`` for ``root`` and the folders up to ``depth``
    levels below it, each sorted, breadth first; hidden folders and those named in ``skip``
    (image folders: listing a million images finds no annotation file) are not entered,
    folders that cannot be listed are passed over. ``max_folders`` caps how many are listed
    (detection: a thousand class folders on S3 must not be listed to say "not mine")."""
    root = root.rstrip("/") or "/"
    pending = [(root, 0)]
    listed = 0
    while pending and (max_folders is None or listed < max_folders):
        listed += 1
        folder, level = pending.pop(0)
        try:
            entries = fs.ls(folder, detail=True)
        except (OSError, ValueError):
            continue
        dirs = sorted(posixpath.basename(e["name"].rstrip("/")) for e in entries
                      if e.get("type") == "directory")
        dirs = [d for d in dirs if d and not d.startswith(".")]
        files = sorted(posixpath.basename(e["name"]) for e in entries
                       if e.get("type") != "directory")
        yield folder, dirs, files
        if level < depth:
            pending.extend((posixpath.join(folder, d), level + 1) for d in dirs
                           if d not in skip)


class DetectsByReason:
    """Mixin of readers whose :meth:`detect_reason` decides: ``detect`` is whether it gives
    a reason (one place for both, so they can never disagree)."""

    @classmethod
    def detect(cls, uri: str, storage_options: Any = None) -> bool:
        """Whether ``uri`` looks like this format (see ``detect_reason``)."""
        return cls.detect_reason(uri, storage_options) is not None  # type: ignore[attr-defined]
