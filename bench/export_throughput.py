"""Export throughput: `clarifai_connect.export` of small labelled images from a local-server
app, as a ratio to `clarifai_connect.sync` of the same images into it, in the same run.

One server (a subprocess, as a real API is remote) gets the images through a sync (timed),
then each format exports them to a fresh folder (timed); three rounds, the median reported. The ratio is export inputs/s over
sync inputs/s: listing, annotations, media downloads (a batch of 32 per HTTP request
from a local server), and file writes against
reading files and posting inputs. Goal: ratio ≥ 1.0 (exporting is no slower than syncing).
Each round also copies the images into a fresh folder with as many threads (``copy_files``):
what writing a file per input costs on this disk alone, which bounds both formats.

    python -m bench.export_throughput [--inputs 2000] [--workers 8] [--formats coco,folder]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import clarifai_connect
from bench.server_post_inputs import tiny_png
from bench.sync_throughput import server_process


def _images(root: Path, total: int, offset: int) -> Path:
    """``root/c<k>/img<n>.png``: distinct bytes per round, as the server deduplicates."""
    for n in range(offset, offset + total):
        folder = root / f"c{n % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"img{n:06d}.png").write_bytes(tiny_png(n))
    return root


def _timed_files(root: Path, destination: Path, workers: int) -> float:
    """Files/s of copying the sync's images into a fresh folder with ``workers`` threads (a
    plain read and write each): the floor of any export that writes a file per input, on
    this disk, now."""
    sources = sorted(root.rglob("*.png"))
    folders = {p.parent.name for p in sources}
    start = time.perf_counter()
    for name in folders:
        (destination / name).mkdir(parents=True)

    def copy(path: Path) -> None:
        (destination / path.parent.name / path.name).write_bytes(path.read_bytes())

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(copy, sources))
    return len(sources) / (time.perf_counter() - start)


def _timed_export(api: dict, app: str, destination: Path, format: str, workers: int,
                  total: int, profile: str) -> float:
    start = time.perf_counter()
    if profile:
        import cProfile

        with cProfile.Profile() as prof:
            exported = clarifai_connect.export(app, str(destination), format, dataset="all",
                                               workers=workers, **api)
        prof.dump_stats(f"{profile}.{format}")
    else:
        exported = clarifai_connect.export(app, str(destination), format, dataset="all",
                                           workers=workers, **api)
    rate = total / (time.perf_counter() - start)
    if exported.exported != total:
        raise RuntimeError(f"the export did not write everything: {exported.summary()}")
    return rate


def run(total: int = 2000, workers: int = 8, formats: tuple[str, ...] = ("coco", "folder"),
        rounds: int = 3, profile: str = "", out_dir: str | None = None,
        settle: bool = True) -> dict:
    """``rounds`` times: sync ``total`` images into a fresh app, export them in each format.
    The ratio of each round is taken right after its sync (a shared machine's load drifts);
    the median round is reported. ``settle``: each export starts once the server finished
    embedding what the sync posted (background work the sync's time leaves out, ~3 ms of
    CPU an image, that would otherwise take one of a small machine's cores from the
    export); the seconds waited are reported."""
    ratios: dict[str, list[float]] = {f: [] for f in formats}
    rates: dict[str, list[float]] = {"sync": [], "files": [], **{f: [] for f in formats}}
    settled: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, server_process(str(Path(tmp) / "server")) as server, \
            tempfile.TemporaryDirectory(dir=out_dir) as out:
        api = {"base_url": server.base_url, "pat": server.keys[0]}
        for n in range(rounds):
            app = f"bench/export-{n}"
            root = _images(Path(tmp) / f"images-{n}", total, offset=n * total)
            start = time.perf_counter()
            report = clarifai_connect.sync(str(root), app, format="folder", dataset="all",
                                           workers=4, state=Path(tmp) / f"s{n}.sqlite", **api)
            sync_rate = total / (time.perf_counter() - start)
            if report.created != total:
                raise RuntimeError(f"the sync did not land everything: {report.summary()}")
            rates["sync"].append(sync_rate)
            rates["files"].append(_timed_files(root, Path(out) / f"files-{n}", workers))
            if settle:
                settled.append(server.settle())
            for format in formats:
                rate = _timed_export(api, app, Path(out) / f"out-{n}-{format}", format,
                                     workers, total, profile)
                rates[format].append(rate)
                ratios[format].append(rate / sync_rate)
    out: dict = {"inputs": total, "workers": workers, "rounds": rounds,
                 "sync_inputs_per_s": round(statistics.median(rates["sync"])),
                 "sync_rounds": [round(r) for r in rates["sync"]],
                 # A bound, not a goal: exports write a file per input, and on a slow disk
                 # creating the files alone may be slower than the sync.
                 "copy_files_per_s": round(statistics.median(rates["files"])),
                 "copy_files_rounds": [round(r) for r in rates["files"]],
                 "server_settle_s": [round(s, 1) for s in settled]}
    for format in formats:
        out[f"{format}_export_inputs_per_s"] = round(statistics.median(rates[format]))
        out[f"{format}_ratio"] = round(statistics.median(ratios[format]), 3)
        out[f"{format}_ratios"] = [round(r, 3) for r in ratios[format]]
        out[f"{format}_rounds"] = [round(r) for r in rates[format]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--formats", default="coco,folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", default="", help="Write cProfile stats to PREFIX.<format>.")
    parser.add_argument("--no-settle", action="store_true",
                        help="Export while the server still embeds what the sync posted.")
    parser.add_argument("--out-dir", default=None,
                        help="Export under this folder (default: the system's temporary one; "
                             "/dev/shm takes the disk out of the measurement).")
    args = parser.parse_args()
    print(json.dumps(run(args.inputs, args.workers, tuple(args.formats.split(",")),
                         args.rounds, args.profile, args.out_dir, not args.no_settle),
                     indent=2))


if __name__ == "__main__":
    main()
