"""Walking a local folder tree with ``os.scandir``: what ``fsspec``'s ``walk(detail=True)``
yields, at a fraction of its cost per file.

fsspec's local ``ls`` builds an ``info`` dict of ten entries per file (two path
normalisations, a stat and a ``getattr`` per field); a sync of small files spends more
time there than in reading them. This walk gives the same ``(directory, dirs, files)``
triples, top down (the caller may reorder or prune ``dirs``), with the entries the folder
connector uses: ``name``, ``type``, ``size``, ``islink`` and ``mtime``, taken as fsspec
takes them (the link's own ``lstat``; a link's size is its target's), so fingerprints do
not change whichever walk read the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["local_walk"]

Info = dict[str, Any]


def _info(entry: os.DirEntry) -> Info:
    out = entry.stat(follow_symlinks=False)
    link = entry.is_symlink()
    if entry.is_dir(follow_symlinks=False):
        kind = "directory"
    elif entry.is_file(follow_symlinks=False):
        kind = "file"
    else:
        kind = "other"
    size = out.st_size
    if link:
        try:
            size = entry.stat(follow_symlinks=True).st_size
        except OSError:
            size = 0
    return {"name": entry.path, "size": size, "type": kind, "islink": link,
            "mtime": out.st_mtime}


def local_walk(root: str, on_error: Callable[[OSError], None]
               ) -> Iterator[tuple[str, dict[str, Info], dict[str, Info]]]:
    """``(directory, dirs, files)`` of the tree under the absolute posix path ``root``, top
    down; a folder that cannot be listed is passed to ``on_error`` and left out. Entries
    that vanish while listed are skipped."""
    try:
        with os.scandir(root) as listing:
            entries = list(listing)
    except OSError as exc:
        on_error(exc)
        return
    dirs: dict[str, Info] = {}
    files: dict[str, Info] = {}
    for entry in entries:
        try:
            info = _info(entry)
        except FileNotFoundError:
            continue
        (dirs if info["type"] == "directory" else files)[entry.name] = info
    yield root, dirs, files
    for info in list(dirs.values()):
        yield from local_walk(info["name"], on_error)
