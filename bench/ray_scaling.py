"""Sync throughput on Ray with 1, 2 and 4 workers, as ratios to the 1-worker run.

A local server (``clarifai-connect serve --latency 0.05``: 50 ms added to every call, as a
remote API would) in a subprocess; a Parquet source of text rows in many row groups;
:func:`~clarifai_connect.integrations.ray.sync_on_ray` with N workers (2 × N shards, each
with ``--rpc-workers`` concurrent calls) into a fresh app per run. The work is bound by
latency, not CPU, so more workers should help even on 2 cores (goal: ≥ 1.7× at 2).
Ray starts once, before the first measured run, and a warm-up sync starts its workers.

    python -m bench.ray_scaling [--rows 6000] [--workers 1,2,4] [--rpc-workers 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Served:
    base_url: str
    key: str


@contextlib.contextmanager
def slow_server(data_dir: str, latency: float) -> Iterator[Served]:
    """``clarifai-connect serve`` with ``latency`` seconds added to every call."""
    key = os.urandom(16).hex()
    proc = subprocess.Popen(
        [sys.executable, "-m", "clarifai_connect.cli", "serve", "--port", "0", "--data-dir",
         data_dir, "--pat", f"bench:{key}", "--latency", str(latency)],
        stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # "Serving the Clarifai API on http://host:port"
        yield Served(line.strip().rsplit(" ", 1)[1], key)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def write_source(path: Path, rows: int, group: int) -> str:
    """Text rows with a label, ``group`` rows per row group (the shards' unit)."""
    table = pa.table({"inputid": [f"t{i}" for i in range(rows)],
                      "input": [f"row {i} of the bench" for i in range(rows)],
                      "concepts": [f"c{i % 5}" for i in range(rows)]})
    pq.write_table(table, path, row_group_size=group)
    return str(path)


def measure(source: str, rows: int, server: Served, app: str, workers: int,
            rpc_workers: int, batch_size: int) -> float:
    """Items per second of one sync on Ray with ``workers`` workers."""
    from clarifai_connect.integrations.ray import sync_on_ray

    start = time.perf_counter()
    report = sync_on_ray(source, f"bench/{app}", workers=workers, base_url=server.base_url,
                         pat=server.key, rpc_workers=rpc_workers, batch_size=batch_size)
    elapsed = time.perf_counter() - start
    if (report.created, report.failed) != (rows, 0):
        raise SystemExit(f"the sync with {workers} workers was not exact: {report.as_dict()}")
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--rpc-workers", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    import ray

    ray.init(num_cpus=max(counts), include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as work, \
            slow_server(str(Path(work) / "server"), args.latency) as server:
        group = max(args.rows // (4 * max(counts)), 1)
        source = write_source(Path(work) / "bench.parquet", args.rows, group)
        warm = write_source(Path(work) / "warm.parquet", 64, 8)
        measure(warm, 64, server, "warmup", max(counts), args.rpc_workers, args.batch_size)
        rates = {n: measure(source, args.rows, server, f"w{n}", n, args.rpc_workers,
                            args.batch_size) for n in counts}
    ray.shutdown()
    base = rates[counts[0]]
    print(json.dumps({"rows": args.rows, "latency_s": args.latency,
                      "rpc_workers_per_task": args.rpc_workers, "batch_size": args.batch_size,
                      "items_per_s": {n: round(r, 1) for n, r in rates.items()},
                      "ratio_to_1_worker": {n: round(r / base, 2) for n, r in rates.items()}},
                     indent=2))


if __name__ == "__main__":
    main()
