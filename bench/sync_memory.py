"""Memory growth of `clarifai-connect sync` from 10,000 to 100,000 records.

Each sync runs in a subprocess of its own (the CLI, as a user runs it) against a local
server in another subprocess; its peak RSS is the kernel's high-water mark of the child's
own memory (``VmHWM``, read as it exits: ``wait4``'s ``ru_maxrss`` would also count the
parent's high-water mark, which a vforked child carries through exec). ``ratio`` is the
issue's figure, the larger run's peak over the smaller's (goal ≤ 1.3). Whole-process peaks
are mostly the interpreter and its imports, which dilute that ratio towards 1, so a tiny
run (a couple of batches) is measured too: ``net_ratio`` is the larger run's growth over
that baseline divided by the smaller run's, and ``growth_mb`` the plain difference between
the two sizes, also per extra record. With ``--workers auto`` (the default, as users run
it) the longer run also grows its concurrency further — more threads and batches in flight,
bounded by its ceiling, not by the source — so ``--workers 4`` isolates what follows the
source (a memory that followed it would give a net ratio near 10). The source is a Parquet
table of small labelled PNGs (bytes column), written in row groups so the connector can
stream it.

    python -m bench.sync_memory [--tiny 256] [--small 10000] [--large 100000] [--workers auto]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.server_post_inputs import tiny_png
from bench.sync_throughput import server_process

ROW_GROUP = 4096


def write_table(path: Path, rows: int) -> Path:
    """A Parquet file of ``rows`` labelled images, written one row group at a time."""
    schema = pa.schema([("inputid", pa.string()), ("input", pa.binary()),
                        ("concepts", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            n = range(start, min(rows, start + ROW_GROUP))
            writer.write_table(pa.table({
                "inputid": [f"m{i}" for i in n], "input": [tiny_png(i) for i in n],
                "concepts": [f"c{i % 10}" for i in n]}, schema=schema))
    return path


# The CLI, writing its own high-water mark to $PEAK_OUT as it exits.
_CLI_WITH_PEAK = """
import atexit, os, runpy, sys

def _peak():
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open(os.environ["PEAK_OUT"], "w") as out:
        out.write(str(kb * 1024))

atexit.register(_peak)
sys.argv[0] = "clarifai-connect"
runpy.run_module("clarifai_connect.cli", run_name="__main__")
"""


def peak_rss_of_sync(server, source: Path, app: str, work: Path,
                     workers: str = "auto") -> tuple[int, dict, float]:
    """Run the CLI sync in a subprocess; (its peak RSS in bytes, report summary, seconds)."""
    report, peak = work / f"{app}.jsonl", work / f"{app}.peak"
    env = {**os.environ, "CLARIFAI_PAT": server.keys[0], "PEAK_OUT": str(peak)}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CLI_WITH_PEAK, "sync", str(source), "--app", f"bench/{app}",
         "--base-url", server.base_url, "--state", str(work / f"{app}.sqlite"),
         "--report", str(report), "--no-progress", "--workers", workers],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"sync of {source} failed: {proc.stderr.decode()[-2000:]}")
    summary = json.loads(report.read_text().splitlines()[-1])["summary"]
    return int(peak.read_text()), summary, seconds


def run(small: int = 10000, large: int = 100000, tiny: int = 256, workers: str = "auto") -> dict:
    """Sync the three sizes; return the peaks, their ratio (large over small), the growth
    over the tiny baseline and its ratio."""
    out: dict = {"tiny": tiny, "small": small, "large": large, "workers": workers}
    with tempfile.TemporaryDirectory() as tmp, server_process(str(Path(tmp) / "server")) as server:
        work = Path(tmp)
        for label, rows in (("tiny", tiny), ("small", small), ("large", large)):
            source = write_table(work / f"{label}.parquet", rows)
            peak, summary, seconds = peak_rss_of_sync(server, source, label, work, workers)
            if summary["created"] != rows or summary["failed"]:
                raise RuntimeError(f"the {label} sync did not land everything: {summary}")
            out[f"{label}_peak_rss_mb"] = round(peak / 2**20, 1)
            out[f"{label}_inputs_per_s"] = round(rows / seconds)
    base = out["tiny_peak_rss_mb"]
    for label in ("small", "large"):
        out[f"{label}_over_baseline_mb"] = round(out[f"{label}_peak_rss_mb"] - base, 1)
    out["growth_mb"] = round(out["large_peak_rss_mb"] - out["small_peak_rss_mb"], 1)
    out["bytes_per_extra_record"] = round(out["growth_mb"] * 2**20 / max(large - small, 1))
    out["ratio"] = round(out["large_peak_rss_mb"] / out["small_peak_rss_mb"], 3)
    # Within a megabyte of the baseline is noise, not a denominator.
    out["net_ratio"] = round(max(out["large_over_baseline_mb"], 1.0)
                         / max(out["small_over_baseline_mb"], 1.0), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10000)
    parser.add_argument("--large", type=int, default=100000)
    parser.add_argument("--tiny", type=int, default=256, help="the baseline run's records")
    parser.add_argument("--workers", default="auto",
                        help="the syncs' --workers (a number fixes the concurrency)")
    args = parser.parse_args()
    print(json.dumps(run(args.small, args.large, args.tiny, args.workers), indent=2))


if __name__ == "__main__":
    main()
