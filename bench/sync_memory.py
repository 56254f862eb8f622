"""Memory growth of `clarifai-connect sync` from 10,000 to 100,000 records, net of the
interpreter.

Each sync runs in a subprocess of its own (the CLI, as a user runs it) against a local
server in another subprocess; its peak RSS (the kernel's high-water mark, from ``wait4``)
is measured. Whole-process peaks are mostly the interpreter and its imports, which would
dilute a ratio of the two peaks towards 1 whatever the engine does, so a tiny run (a couple
of batches) is measured too and subtracted: ``ratio`` is the larger run's growth over the
baseline divided by the smaller run's. The engine streams, so it should stay near 1 (a
memory that followed the source would give ~10); ``growth_mb`` is the plain difference
between the two sizes, also given per extra record (the steadier figure: it has no small
denominator). The source is a Parquet table of small labelled PNGs (bytes
column), written in row groups so the connector can stream it.

    python -m bench.sync_memory [--tiny 256] [--small 10000] [--large 100000]
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


def peak_rss_of_sync(server, source: Path, app: str, work: Path) -> tuple[int, dict, float]:
    """Run the CLI sync in a subprocess; (peak RSS in bytes, report summary, seconds)."""
    report = work / f"{app}.jsonl"
    env = {**os.environ, "CLARIFAI_PAT": server.keys[0]}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "clarifai_connect.cli", "sync", str(source), "--app",
         f"bench/{app}", "--base-url", server.base_url, "--state", str(work / f"{app}.sqlite"),
         "--report", str(report), "--no-progress"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"sync of {source} failed: {proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    summary = json.loads(report.read_text().splitlines()[-1])["summary"]
    return usage.ru_maxrss * 1024, summary, seconds


def run(small: int = 10000, large: int = 100000, tiny: int = 256) -> dict:
    """Sync the three sizes; return the peaks, the growth over the tiny baseline and their
    ratio (large over small)."""
    out: dict = {"tiny": tiny, "small": small, "large": large}
    with tempfile.TemporaryDirectory() as tmp, server_process(str(Path(tmp) / "server")) as server:
        work = Path(tmp)
        for label, rows in (("tiny", tiny), ("small", small), ("large", large)):
            source = write_table(work / f"{label}.parquet", rows)
            peak, summary, seconds = peak_rss_of_sync(server, source, label, work)
            if summary["created"] != rows or summary["failed"]:
                raise RuntimeError(f"the {label} sync did not land everything: {summary}")
            out[f"{label}_peak_rss_mb"] = round(peak / 2**20, 1)
            out[f"{label}_inputs_per_s"] = round(rows / seconds)
    base = out["tiny_peak_rss_mb"]
    for label in ("small", "large"):
        out[f"{label}_over_baseline_mb"] = round(out[f"{label}_peak_rss_mb"] - base, 1)
    out["growth_mb"] = round(out["large_peak_rss_mb"] - out["small_peak_rss_mb"], 1)
    out["bytes_per_extra_record"] = round(out["growth_mb"] * 2**20 / max(large - small, 1))
    # Within a megabyte of the baseline is noise, not a denominator.
    out["ratio"] = round(max(out["large_over_baseline_mb"], 1.0)
                         / max(out["small_over_baseline_mb"], 1.0), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10000)
    parser.add_argument("--large", type=int, default=100000)
    parser.add_argument("--tiny", type=int, default=256, help="the baseline run's records")
    args = parser.parse_args()
    print(json.dumps(run(args.small, args.large, args.tiny), indent=2))


if __name__ == "__main__":
    main()
