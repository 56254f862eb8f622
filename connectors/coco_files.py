"""Finding COCO annotation files by what they hold, whatever their name and folder.

Tools name them ``instances_val2017.json`` (COCO), ``instances_default.json`` (CVAT),
``_annotations.coco.json`` in each split folder (Roboflow), ``result.json`` (Label Studio),
``labels.json`` (FiftyOne). :func:`is_coco_json` reads only the first bytes: a JSON object
whose first top-level keys include ``images``, ``annotations`` or ``categories`` (after
``info``, ``licenses`` and the like). :func:`scan_tree` looks within a few levels of the
root, without entering image folders.
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Iterator
from typing import Any

from .layout import IMAGE_FOLDERS, MAX_DEPTH, is_image, walk_bounded

__all__ = ["COCO_KEYS", "is_coco_json", "scan_tree"]

COCO_KEYS = frozenset({"images", "annotations", "categories"})
HEAD_BYTES = 1 << 16
# Top-level keys looked at before deciding: COCO files put theirs first or after info.
_KEYS_LOOKED_AT = 6


def is_coco_json(fs: Any, path: str) -> bool:
    """Whether the JSON file at ``path`` starts like a COCO annotation file."""
    import ijson

    try:
        with fs.open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError:
        return False
    seen = 0
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(head.removeprefix(b"\xef\xbb\xbf"))):
            if prefix == "" and event != "start_map" and event != "map_key" \
                    and event != "end_map":
                return False  # a list (Label Studio's own export, detections), a scalar
            if prefix == "" and event == "map_key":
                if value in COCO_KEYS:
                    return True
                seen += 1
                if seen >= _KEYS_LOOKED_AT:
                    return False
    except (ijson.JSONError, ijson.IncompleteJSONError, ValueError):
        return False
    return False


def scan_tree(fs: Any, root: str, depth: int = MAX_DEPTH, max_folders: int | None = None
              ) -> Iterator[tuple[str, str]]:
    """``(path, kind)`` of the files within ``depth`` levels of ``root`` (image folders not
    entered): kind ``coco`` for a COCO annotation file, ``json`` for another JSON file,
    ``other`` for what is neither JSON nor an image (a README, a script, ``.DS_Store``).
    Images are not listed; ``max_folders`` caps the folders listed (for detection)."""
    for folder, _, files in walk_bounded(fs, root, depth, IMAGE_FOLDERS, max_folders):
        for name in files:
            path = posixpath.join(folder, name)
            if name.lower().endswith(".json"):
                yield path, "coco" if is_coco_json(fs, path) else "json"
            elif not is_image(name):
                yield path, "other"
