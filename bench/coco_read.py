"""Reading a large COCO instances file: our streaming reader as a ratio to ``json.load``.

Generates a COCO file (random polygons and boxes, annotations in random image order,
categories last as in the official files, non-contiguous category ids), then measures in
child processes, so each gets its own peak RSS:

- ``json.load`` of the file (the baseline: the whole document in memory, no records),
- the streaming scan alone (one pass of :class:`~connectors.coco_stream.SectionReader`
  and the group-by-image with its disk spill, no records): the part that replaces
  ``json.load``,
- the ``coco`` connector producing every Record (regions normalized and validated, ids,
  metadata, fingerprints): the scan plus building ~1 Region and ~4 Points per annotation.

It prints one JSON object: seconds and peak RSS of each, and the time ratio.

    python -m bench.coco_read [--annotations 1000000] [--images 100000] [--keep FILE]
"""

from __future__ import annotations

import argparse
import json
import marshal
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CATEGORY_IDS = (1, 2, 3, 5, 8, 13, 21, 34, 55, 89)


def generate(path: str | os.PathLike, annotations: int = 1_000_000, images: int = 100_000,
             seed: int = 0) -> Path:
    """Write a COCO instances file of ``annotations`` over ``images`` images, streaming."""
    rng = random.Random(seed)
    path = Path(path)
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"info": {"description": "bench"}, "licenses": [], "images": [')
        for n in range(1, images + 1):
            out.write(("," if n > 1 else "") + json.dumps(
                {"id": n, "file_name": f"{n:012d}.jpg", "width": 640, "height": 480,
                 "coco_url": f"http://images.example/{n:012d}.jpg"}))
        out.write('], "annotations": [')
        for n in range(1, annotations + 1):
            x, y = round(rng.uniform(0, 600), 2), round(rng.uniform(0, 430), 2)
            w, h = round(rng.uniform(1, 639 - x), 2), round(rng.uniform(1, 479 - y), 2)
            polygon = [x, y, round(x + w, 2), y, round(x + w, 2), round(y + h, 2), x,
                       round(y + h, 2)]
            out.write(("," if n > 1 else "") + json.dumps(
                {"id": n, "image_id": rng.randint(1, images),
                 "category_id": rng.choice(CATEGORY_IDS), "iscrowd": 0,
                 "area": round(w * h, 2), "bbox": [x, y, w, h], "segmentation": [polygon]}))
        out.write('], "categories": [')
        out.write(",".join(json.dumps({"id": c, "name": f"class {c}", "supercategory": "bench"})
                           for c in CATEGORY_IDS))
        out.write("]}")
    return path


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _child(mode: str, path: str, memory_annotations: int) -> dict:
    start = time.perf_counter()
    if mode == "json.load":
        with open(path, "rb") as handle:
            doc = json.load(handle)
        count = len(doc["annotations"])
    elif mode == "scan":
        from connectors.coco_stream import SECTIONS, AnnotationGroups, SectionReader

        count = 0
        categories, images = {}, []
        with AnnotationGroups(memory_annotations, os.path.dirname(path)) as groups:
            with open(path, "rb") as handle:
                for section, item in SectionReader(handle).items(SECTIONS):
                    if section == "annotations":  # held as the reader does
                        groups.add(str(item["image_id"]), marshal.dumps((0, item)))
                    elif section == "images":
                        images.append(str(item["id"]))
                    else:
                        categories[item["id"]] = item["name"]
            for _, anns in groups.groups(images):
                count += len([marshal.loads(a) for a in anns])
    else:
        from clarifai_connect.records import Record
        from connectors.coco import CocoReader

        count = problems = 0
        for item in CocoReader(path, memory_annotations=memory_annotations,
                               spill_dir=os.path.dirname(path)):
            if isinstance(item, Record):
                count += len(item.regions)
            else:
                problems += 1
        if problems:
            raise SystemExit(f"{problems} problems reading the generated file")
    return {"seconds": time.perf_counter() - start, "peak_rss_bytes": _peak_rss_bytes(),
            "annotations": count}


def measure(path: str, memory_annotations: int = 50_000) -> dict:
    """Run both measurements on ``path`` in child processes and return the report."""
    results = {}
    for mode in ("json.load", "scan", "reader"):
        out = subprocess.run(
            [sys.executable, "-m", "bench.coco_read", "--child", mode, str(path),
             "--memory-annotations", str(memory_annotations)],
            check=True, capture_output=True, text=True,
            cwd=Path(__file__).resolve().parents[1])
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    base, scan, ours = results["json.load"], results["scan"], results["reader"]
    if not base["annotations"] == scan["annotations"] == ours["annotations"]:
        raise SystemExit(f"reader saw {ours['annotations']} annotations, scan "
                         f"{scan['annotations']}, json.load {base['annotations']}")
    return {
        "file_bytes": os.path.getsize(path),
        "annotations": ours["annotations"],
        "json_load_seconds": round(base["seconds"], 2),
        "scan_seconds": round(scan["seconds"], 2),
        "reader_seconds": round(ours["seconds"], 2),
        "time_ratio_scan_to_json_load": round(scan["seconds"] / base["seconds"], 2),
        "time_ratio_reader_to_json_load": round(ours["seconds"] / base["seconds"], 2),
        "json_load_peak_rss_mb": round(base["peak_rss_bytes"] / 2**20, 1),
        "scan_peak_rss_mb": round(scan["peak_rss_bytes"] / 2**20, 1),
        "reader_peak_rss_mb": round(ours["peak_rss_bytes"] / 2**20, 1),
        "memory_annotations": memory_annotations,
    }


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--memory-annotations", type=int, default=50_000)
    parser.add_argument("--keep", help="write the generated file here and keep it")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child[0], args.child[1], args.memory_annotations)))
        return
    with tempfile.TemporaryDirectory(prefix="coco-bench-") as tmp:
        path = args.keep or os.path.join(tmp, "instances_bench.json")
        started = time.perf_counter()
        generate(path, args.annotations, args.images)
        report = {"generate_seconds": round(time.perf_counter() - started, 1)}
        report.update(measure(path, args.memory_annotations))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
