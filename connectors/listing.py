"""Listing a folder lazily, on any fsspec filesystem.

``fs.ls`` builds the whole listing before returning it, which for an S3 prefix of millions
of keys means minutes of waiting and a large list in memory. On object stores that page
their listings (s3fs), :func:`iter_files` yields entries page by page instead; elsewhere it
falls back to ``fs.ls``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["iter_files"]

PAGE = 1000


def iter_files(fs: Any, folder: str, suffixes: tuple[str, ...] = ()) -> Iterator[str]:
    """Paths of the files directly in ``folder`` whose names end with one of ``suffixes``
    (case-insensitive; all files when empty), lazily where the filesystem allows it."""
    wanted = tuple(s.lower() for s in suffixes)
    for entry in _entries(fs, folder.rstrip("/")):
        if entry.get("type") == "directory":
            continue
        name = entry["name"]
        if not wanted or name.lower().endswith(wanted):
            yield name


def _entries(fs: Any, folder: str) -> Iterator[dict[str, Any]]:
    iterdir = getattr(fs, "_iterdir", None)
    split_path = getattr(fs, "split_path", None)
    # Only s3fs's private paging API is known here; other filesystems list with ls().
    if (not type(fs).__module__.startswith("s3fs") or iterdir is None or split_path is None
            or getattr(fs, "version_aware", False)):
        yield from fs.ls(folder, detail=True)
        return
    from fsspec.asyn import sync

    bucket, key, _ = split_path(folder)
    pages = iterdir(bucket, delimiter="/", prefix=(key.rstrip("/") + "/") if key else "")

    async def next_page() -> list[dict[str, Any]]:
        page: list[dict[str, Any]] = []
        async for entry in pages:
            page.append(entry)
            if len(page) >= PAGE:
                break
        return page

    try:
        while True:
            page = sync(fs.loop, next_page)
            if not page:
                return
            yield from page
    finally:
        sync(fs.loop, pages.aclose)
