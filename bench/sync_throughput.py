"""Sync throughput: `clarifai_connect.sync` of small labelled images, as a ratio to the raw
gRPC stub posting the same inputs in pre-built batches with the same number of threads.

Each runs against a fresh local server (same settings) in a process of its own, as a real
API is remote; the clients run in this process. The ratio is the engine's own cost —
listing and reading files, fingerprints, the state file, the report, batching — whatever
the machine's speed. Target: ratio ≥ 0.8. ``--in-process`` puts the server in this
process instead (then client and server fight over one GIL, which the raw stub, doing
almost nothing in Python, barely feels).

    python -m bench.sync_throughput [--inputs 20000] [--threads 4]
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

from clarifai_grpc.grpc.api import resources_pb2, service_pb2

import clarifai_connect
from bench.server_post_inputs import BATCH, drive, tiny_png
from clarifai_connect.server import LocalServer
from clarifai_connect.testing import raw_api

LABELS = 10


def write_images(root: Path, total: int) -> list[tuple[str, bytes, str]]:
    """``root/c<k>/img<n>.png`` files; returns (relative path, bytes, label) of each."""
    out = []
    for n in range(total):
        label = f"c{n % LABELS}"
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        data = tiny_png(n)
        (folder / f"img{n:06d}.png").write_bytes(data)
        out.append((f"{label}/img{n:06d}.png", data, label))
    return out


def raw_batches(items: list[tuple[str, bytes, str]], user_app) -> list:
    """The same inputs as pre-built PostInputsRequests of 128 (ids as the folder connector
    would give them don't matter to the server's cost: any valid id)."""
    requests, inputs = [], []
    for n, (_, data, label) in enumerate(items):
        inputs.append(resources_pb2.Input(id=f"in-{n}", data=resources_pb2.Data(
            image=resources_pb2.Image(base64=data),
            concepts=[resources_pb2.Concept(id=label, name=label, value=1.0)])))
        if len(inputs) == BATCH:
            requests.append(service_pb2.PostInputsRequest(user_app_id=user_app, inputs=inputs))
            inputs = []
    if inputs:
        requests.append(service_pb2.PostInputsRequest(user_app_id=user_app, inputs=inputs))
    return requests


@dataclass(frozen=True)
class ServerProcess:
    """A ``clarifai-connect serve`` subprocess: what ``raw_api`` and ``sync`` need."""

    host: str
    port: int
    keys: tuple[str, ...]
    pid: int = 0

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (Linux ``/proc``; 0.0 elsewhere)."""
        try:
            with open(f"/proc/{self.pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def settle(self, quiet: float = 0.05, window: float = 0.5, limit: float = 120.0) -> float:
        """Wait until the server's background work (embedding what was just posted) is
        done: its CPU use over ``window`` seconds below ``quiet`` of a core, ``limit``
        seconds at most. Returns the seconds waited."""
        start = time.perf_counter()
        before = self.cpu_seconds()
        while time.perf_counter() - start < limit:
            time.sleep(window)
            now = self.cpu_seconds()
            if now - before < quiet * window:
                break
            before = now
        return time.perf_counter() - start

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.contextmanager
def server_process(data_dir: str, latency: float = 0.0) -> Iterator[ServerProcess]:
    """Start ``clarifai-connect serve`` on a free port (``latency`` seconds added to every
    call) and stop it afterwards."""
    key = os.urandom(16).hex()
    proc = subprocess.Popen(
        [sys.executable, "-m", "clarifai_connect.cli", "serve", "--port", "0",
         "--data-dir", data_dir, "--pat", f"bench:{key}", "--latency", str(latency)],
        stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # "Serving the Clarifai API on http://host:port"
        host, port = line.strip().rsplit("://", 1)[1].rsplit(":", 1)
        yield ServerProcess(host, int(port), (key,), proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def start_server(data_dir: str, in_process: bool):
    """The local server of one measurement: a subprocess, or in this process."""
    # Both bind their key to the user "bench", the one both measurements post as.
    return (LocalServer(data_dir=data_dir, user="bench") if in_process
            else server_process(data_dir))


def measure_raw(items, threads: int, in_process: bool = False) -> float:
    with tempfile.TemporaryDirectory() as data_dir, start_server(data_dir, in_process) as server:
        api = raw_api(server)
        user_app = resources_pb2.UserAppIDSet(user_id="bench", app_id="raw")
        api.call("PostApps", service_pb2.PostAppsRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id="bench"),
            apps=[resources_pb2.App(id="raw")]))
        requests = raw_batches(items, user_app)
        api.channel.close()
        return drive(server, requests, threads)


def measure_sync(root: Path, total: int, threads: int, in_process: bool = False
                 ) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as data_dir, start_server(data_dir, in_process) as server:
        start = time.perf_counter()
        report = clarifai_connect.sync(
            str(root), "bench/sync", format="folder", base_url=server.base_url,
            pat=server.keys[0], workers=threads, state=Path(data_dir) / "state.sqlite")
        elapsed = time.perf_counter() - start
    if report.created != total or report.failed:
        raise RuntimeError(f"the sync did not land everything: {report.summary()}")
    return total / elapsed, report.as_dict()


def run(total: int = 20000, threads: int = 4, in_process: bool = False) -> dict:
    """Measure both and return inputs/s and their ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        items = write_images(root, total)
        raw = measure_raw(items, threads, in_process)
        synced, summary = measure_sync(root, total, threads, in_process)
    return {"inputs": total, "threads": threads, "server_in_process": in_process,
            "raw_stub_inputs_per_s": round(raw),
            "sync_inputs_per_s": round(synced), "ratio": round(synced / raw, 3),
            "created": summary["created"], "failed": summary["failed"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--in-process", action="store_true",
                        help="Run the servers in this process (see the module doc).")
    args = parser.parse_args()
    print(json.dumps(run(args.inputs, args.threads, args.in_process), indent=2))


if __name__ == "__main__":
    main()
