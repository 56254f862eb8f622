"""Helpers of the export tests: sync a source into an app, export it, compare records."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import clarifai_connect
from clarifai_connect.plugins import get_registry
from clarifai_connect.records import Media, Problem, Record, Region
from connectors.masks import encode_rle_string


def read_all(uri: str, format: str, **options: Any) -> tuple[dict[str, Record], list[Problem]]:
    """Every record (by id) and problem a connector reads from ``uri``."""
    records: dict[str, Record] = {}
    problems: list[Problem] = []
    for item in get_registry().open_reader(str(uri), format, **options):
        if isinstance(item, Problem):
            problems.append(item)
        elif isinstance(item, Record):  # notices (ignored files, repairs) are not records
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


def assert_same_records(before: dict[str, Record], after: dict[str, Record],
                        same_ids: bool = False) -> None:
    """The two sets hold the same ids, and each record the same media, labels and regions
    (with ``same_ids``, also the same region ids and metadata)."""
    assert sorted(after) == sorted(before)
    for record_id, record in before.items():
        want, got = record_key(record), record_key(after[record_id])
        assert got["media"] == want["media"], f"{record_id}: media differ"
        assert got["concepts"] == want["concepts"], record_id
        assert got["regions"] == want["regions"], record_id
        if same_ids:
            assert sorted(r.id for r in after[record_id].regions) == \
                sorted(r.id for r in record.regions), record_id
            assert after[record_id].metadata == record.metadata, record_id


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


def _png(width: int, height: int, seed: int) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (width, height), (seed * 40 % 256, 90, 200))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _rle(height: int, width: int, x0: int, y0: int, x1: int, y1: int) -> str:
    """Compressed COCO RLE of the rectangle [x0, x1) × [y0, y1)."""
    column_major = []
    for x in range(width):
        for y in range(height):
            column_major.append(1 if x0 <= x < x1 and y0 <= y < y1 else 0)
    counts, current, run = [], 0, 0
    for value in column_major:
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    counts.append(run)
    return encode_rle_string(counts)


def generated_coco(root: Path) -> Path:
    """A COCO folder with what the datumaro files lack: non-contiguous category ids,
    an object of two polygons, compressed RLE, crowd, image labels, keypoints, two splits."""
    categories = [{"id": 3, "name": "cat", "supercategory": "animal"},
                  {"id": 7, "name": "dog", "supercategory": "animal"},
                  {"id": 12, "name": "person", "supercategory": "",
                   "keypoints": ["nose", "left_eye"], "skeleton": [[1, 2]]},
                  {"id": 20, "name": "indoor", "supercategory": ""}]
    for split, count in (("train", 3), ("val", 2)):
        images, annotations = [], []
        for n in range(count):
            width, height = 40 + n, 30
            name = f"{split}_{n}.png"
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            (root / "images" / split / name).write_bytes(_png(width, height, n))
            image_id = 100 + n
            images.append({"id": image_id, "file_name": name, "width": width, "height": height})
            base = image_id * 10
            annotations += [
                {"id": base + 1, "image_id": image_id, "category_id": 3, "iscrowd": 0,
                 "bbox": [1.5, 2.25, 10, 8], "area": 80},
                {"id": base + 2, "image_id": image_id, "category_id": 7, "iscrowd": 0,
                 "segmentation": [[1, 1, 9.5, 1, 9.5, 7, 1, 7], [20, 20, 25, 20, 22, 27.75]],
                 "bbox": [1, 1, 24, 26.75], "area": 60},
                {"id": base + 3, "image_id": image_id, "category_id": 3, "iscrowd": 1,
                 "segmentation": {"size": [height, width],
                                  "counts": _rle(height, width, 3, 4, 12 + n, 15)},
                 "bbox": [3, 4, 9 + n, 11], "area": 99},
                {"id": base + 4, "image_id": image_id, "category_id": 12, "iscrowd": 0,
                 "bbox": [10, 5, 20, 20], "area": 400, "num_keypoints": 2,
                 "keypoints": [15, 8, 2, 17.5, 7, 1]},
                {"id": base + 5, "image_id": image_id, "category_id": 20},
            ]
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": categories}))
    return root
