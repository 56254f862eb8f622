"""Helpers of the sync tests: what an app holds, what a source holds, small image files."""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import urllib.request
import zlib
from pathlib import Path

from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2

from clarifai_connect.plugins import get_registry
from clarifai_connect.records import Record


def png(n: int, size: int = 2) -> bytes:
    """A small valid PNG, distinct per ``n``."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes([n & 255, (n >> 8) & 255, (n >> 16) & 255]) * size
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0,
                                                                 0, 0))
            + chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b""))


def class_folders(root: Path, counts: dict[str, int], start: int = 0) -> Path:
    """ImageNet-style folders: ``root/<label>/img<n>.png``."""
    n = start
    for label, count in counts.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            (root / label / f"img{n:05d}.png").write_bytes(png(n))
            n += 1
    return root


def coco_file(root: Path, images: int, boxes_per_image: int = 2) -> Path:
    """A COCO instances file with ``images`` images (written beside it) and boxes."""
    root.mkdir(parents=True, exist_ok=True)
    doc = {"images": [], "annotations": [], "categories": [
        {"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    ann = 0
    for i in range(images):
        name = f"im{i:05d}.png"
        (root / name).write_bytes(png(i, size=10))
        doc["images"].append({"id": i + 1, "file_name": name, "width": 10, "height": 10})
        for b in range(boxes_per_image):
            ann += 1
            doc["annotations"].append({"id": ann, "image_id": i + 1, "category_id": 1 + b % 2,
                                       "bbox": [b, b, 3, 4], "area": 12, "iscrowd": 0})
    path = root / "instances.json"
    path.write_text(json.dumps(doc))
    return path


def _page(raw, method: str, request_cls, field: str, **kwargs):
    page = 1
    while True:
        resp = raw.call(method, request_cls(page=page, per_page=1000, **kwargs))
        assert resp.status.code == status_code_pb2.SUCCESS, resp.status
        items = list(getattr(resp, field))
        yield from items
        if len(items) < 1000:
            return
        page += 1


def _region_key(region) -> tuple:
    info = region.region_info
    concepts = tuple(sorted(c.id for c in region.data.concepts))
    if info.HasField("bounding_box"):
        b = info.bounding_box
        return ("box", *(round(v, 4) for v in (b.top_row, b.left_col, b.bottom_row,
                                                b.right_col)), concepts)
    if info.HasField("polygon"):
        return ("polygon", tuple((round(p.row, 4), round(p.col, 4))
                                 for p in info.polygon.points), concepts)
    if info.HasField("point"):
        return ("point", round(info.point.row, 4), round(info.point.col, 4), concepts)
    return ("mask", concepts)


def app_content(raw, app) -> dict[str, dict]:
    """{input id: {concepts, regions, datasets}} of an app, read over the raw stub.

    Fails on a duplicate input id or annotation id (the app must hold each once).
    """
    out: dict[str, dict] = {}
    for inp in _page(raw, "ListInputs", service_pb2.ListInputsRequest, "inputs",
                     user_app_id=app.user_app_id):
        assert inp.id not in out, f"input {inp.id} listed twice"
        out[inp.id] = {"concepts": sorted(c.id for c in inp.data.concepts), "regions": [],
                       "datasets": sorted(inp.dataset_ids)}
    seen = set()
    for ann in _page(raw, "ListAnnotations", service_pb2.ListAnnotationsRequest, "annotations",
                     user_app_id=app.user_app_id):
        assert ann.id not in seen, f"annotation {ann.id} listed twice"
        seen.add(ann.id)
        for region in ann.data.regions:
            out[ann.input_id]["regions"].append(_region_key(region))
    for value in out.values():
        value["regions"].sort()
    return out


def documented_id(key: str) -> str:
    """``records.stable_id``'s documented rule: a valid id is kept; otherwise invalid
    characters become ``_`` and ``-`` + the first 10 hex digits of the key's SHA-256 follow."""
    if re.fullmatch(r"[A-Za-z0-9_.\-]+", key) and not key.startswith(("-", ".")):
        return key
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", key) + "-" + \
        hashlib.sha256(key.encode()).hexdigest()[:10]


def _fetch(url: str, key: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Key {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def app_media(raw, app, key: str) -> dict[str, bytes]:
    """{input id: its media bytes, as the app's hosted URL serves them}."""
    out = {}
    for inp in _page(raw, "ListInputs", service_pb2.ListInputsRequest, "inputs",
                     user_app_id=app.user_app_id):
        part = next(getattr(inp.data, k) for k in ("image", "video", "audio", "text")
                    if inp.data.HasField(k))
        out[inp.id] = _fetch(part.url, key)
    return out


def mask_pixels(png_bytes: bytes) -> tuple[tuple[int, int], frozenset[tuple[int, int]]]:
    """A mask image's (width, height) and the (x, y) of its set (non-zero) pixels."""
    from PIL import Image

    with Image.open(io.BytesIO(png_bytes)) as image:
        gray = image.convert("L")
        width, height = gray.size
        data = gray.tobytes()
    return (width, height), frozenset((i % width, i // width) for i, v in enumerate(data) if v)


def app_masks(raw, app, key: str) -> dict[str, list[tuple]]:
    """{input id: sorted [(concept ids, (width, height), set pixels)]} of the app's masks,
    each fetched from its hosted URL and decoded."""
    out: dict[str, list[tuple]] = {}
    for ann in _page(raw, "ListAnnotations", service_pb2.ListAnnotationsRequest, "annotations",
                     user_app_id=app.user_app_id):
        for region in ann.data.regions:
            if region.region_info.HasField("mask"):
                size, pixels = mask_pixels(_fetch(region.region_info.mask.image.url, key))
                concepts = tuple(sorted(c.id for c in region.data.concepts))
                out.setdefault(ann.input_id, []).append((concepts, size, pixels))
    return {k: sorted(v, key=lambda m: (m[0], m[1], sorted(m[2]))) for k, v in out.items()}


def record_regions(record: Record) -> list[tuple]:
    """The regions of a record in the shape :func:`app_content` gives."""
    out = []
    for region in record.regions:
        concepts = tuple(sorted(c.id for c in region.concepts))
        if region.box is not None:
            b = region.box
            out.append(("box", *(round(v, 4) for v in (b.top_row, b.left_col, b.bottom_row,
                                                        b.right_col)), concepts))
        elif region.polygon:
            out.append(("polygon", tuple((round(p.row, 4), round(p.col, 4))
                                         for p in region.polygon), concepts))
        elif region.point is not None:
            out.append(("point", round(region.point.row, 4), round(region.point.col, 4),
                        concepts))
        else:
            out.append(("mask", concepts))
    return sorted(out)


def source_content(source: str, format: str = "auto", dataset: str = "", **options
                   ) -> dict[str, dict]:
    """What :func:`app_content` should give after syncing ``source`` (its good records)."""
    registry = get_registry()
    if format == "auto":
        format = registry.detect_format(source)
    out = {}
    for item in registry.open_reader(source, format, **options):
        if isinstance(item, Record) and item.id not in out:
            out[item.id] = {"concepts": sorted(c.id for c in item.concepts),
                            "regions": record_regions(item),
                            "datasets": sorted(set(item.dataset_ids) | ({dataset} - {""}))}
    return out
