"""Helpers of the export tests: sync a source into an app, export it, compare records."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import clarifai_connect
from clarifai_connect.plugins import get_registry
from clarifai_connect.records import Media, Problem, Record, Region


def read_all(uri: str, format: str, **options: Any) -> tuple[dict[str, Record], list[Problem]]:
    """Every record (by id) and problem a connector reads from ``uri``."""
    records: dict[str, Record] = {}
    problems: list[Problem] = []
    for item in get_registry().open_reader(str(uri), format, **options):
        if isinstance(item, Problem):
            problems.append(item)
        else:
            assert item.id not in records, f"{item.id} read twice"
            records[item.id] = item
    return records, problems


def mask_pixels(media: Media) -> frozenset[tuple[int, int]]:
    """The (x, y) of every non-zero pixel of a mask image."""
    from PIL import Image

    with Image.open(io.BytesIO(media.read_bytes())) as image:
        gray = image.convert("L")
        width, _ = gray.size
        return frozenset((i % width, i // width) for i, v in enumerate(gray.tobytes()) if v)


def region_key(region: Region, places: int = 6) -> tuple:
    """What a region is, independent of its id: kind, labels and geometry (rounded)."""
    labels = tuple(sorted((c.name, c.value) for c in region.concepts))
    if region.box is not None:
        b = region.box
        shape: Any = tuple(round(v, places) for v in (b.top_row, b.left_col, b.bottom_row,
                                                      b.right_col))
    elif region.polygon:
        shape = tuple((round(p.row, places), round(p.col, places)) for p in region.polygon)
    elif region.point is not None:
        shape = (round(region.point.row, places), round(region.point.col, places))
    else:
        shape = mask_pixels(region.mask)
    return region.kind, labels, shape


def record_key(record: Record) -> dict[str, Any]:
    """What a round trip must keep of a record: media bytes, labels, regions."""
    return {
        "media": record.media.read_bytes(),
        "concepts": sorted((c.name, c.value) for c in record.concepts),
        "regions": sorted((region_key(r) for r in record.regions), key=repr),
    }


def assert_same_records(before: dict[str, Record], after: dict[str, Record]) -> None:
    """The two sets hold the same ids, and each record the same media, labels and regions."""
    assert sorted(after) == sorted(before)
    for record_id, record in before.items():
        want, got = record_key(record), record_key(after[record_id])
        assert got["media"] == want["media"], f"{record_id}: media differ"
        assert got["concepts"] == want["concepts"], record_id
        assert got["regions"] == want["regions"], record_id


def sync_into(server, app, source: str, tmp_path: Path, dataset: str = "ds", **kwargs: Any):
    """sync() ``source`` into ``app`` on ``server``; asserts nothing failed."""
    report = clarifai_connect.sync(str(source), f"{app.user_id}/{app.app_id}", dataset=dataset,
                                   base_url=server.base_url, pat=server.keys[0],
                                   state=tmp_path / f"state-{os.urandom(4).hex()}.sqlite",
                                   **kwargs)
    assert report.failed == 0, report.summary()
    return report


def export_from(server, app, to: str, format: str, **kwargs: Any):
    """clarifai_connect.export() from ``app`` on ``server``."""
    return clarifai_connect.export(f"{app.user_id}/{app.app_id}", str(to), format,
                                   base_url=server.base_url, pat=server.keys[0], **kwargs)


def files_under(root: Path) -> list[str]:
    """Every file below ``root``, as sorted relative paths."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
