"""Side by side in one run: the raw gRPC stub, the official SDK and ``clarifai-connect sync``.

``--inputs`` small labelled images in class folders (``c0/ … c9/``) are uploaded by each
client into a fresh app of the same local server (a ``clarifai-connect serve`` subprocess,
as a real API is remote), once with no injected latency and once with ``--latency``
seconds added to every call by the server. The clients:

- raw stub: pre-built PostInputs requests of 128, ``--threads`` threads (the ceiling);
- official SDK: ``Dataset.upload_from_folder(labels=True)``, one call per class folder
  (needs the ``compat`` extra);
- sync: ``clarifai_connect.sync(folder, format="folder")`` with ``--sync-workers``
  (default ``auto``: 4 concurrent calls at first, more while the throughput rises; the
  most it reached is printed as ``sync_workers``).

Each client's imports happen before its clock starts (the SDK's, and ours: the engine
and the connector plugins). ``--rounds`` repeats everything; the medians of the ratios
are printed beside each round's figures, as JSON.

    python -m bench.compare_sdk [--inputs 10000] [--latency 0.05] [--threads 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from clarifai_grpc.grpc.api import resources_pb2, service_pb2

import clarifai_connect
from bench.server_post_inputs import drive
from bench.sync_throughput import raw_batches, server_process, write_images
from clarifai_connect.testing import raw_api

USER = "bench"


def _raw(server, items, threads: int, app_id: str) -> float:
    api = raw_api(server)
    api.call("PostApps", service_pb2.PostAppsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=USER), apps=[resources_pb2.App(id=app_id)]))
    api.channel.close()
    return drive(server, raw_batches(items, resources_pb2.UserAppIDSet(
        user_id=USER, app_id=app_id)), threads)


def _sdk(server, root: Path, total: int, app_id: str) -> float:
    from clarifai.client.user import User

    user = User(user_id=USER, base_url=server.base_url, pat=server.keys[0])
    dataset = user.create_app(app_id=app_id).create_dataset(dataset_id="images")
    start = time.perf_counter()
    # The SDK prints progress bars and logs per batch: kept out of the figures' output.
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            dataset.upload_from_folder(str(folder), input_type="image", labels=True)
    elapsed = time.perf_counter() - start
    landed = _count(server, app_id)
    if landed != total:
        raise RuntimeError(f"the SDK landed {landed} of {total} inputs")
    return total / elapsed


def _sync(server, root: Path, total: int, workers, app_id: str, state: Path
          ) -> tuple[float, int]:
    start = time.perf_counter()
    report = clarifai_connect.sync(str(root), f"{USER}/{app_id}", format="folder",
                                   base_url=server.base_url, pat=server.keys[0],
                                   workers=workers, state=state)
    elapsed = time.perf_counter() - start
    if report.created != total or report.failed:
        raise RuntimeError(f"the sync did not land everything: {report.summary()}")
    return total / elapsed, report.workers


def _count(server, app_id: str) -> int:
    api = raw_api(server)
    try:
        resp = api.call("GetInputCount", service_pb2.GetInputCountRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id=USER, app_id=app_id)))
        return resp.counts.processed + resp.counts.to_process
    finally:
        api.channel.close()


def run(total: int = 10_000, latencies=(0.0, 0.05), threads: int = 4,
        sync_workers="auto", rounds: int = 1) -> dict:
    """Every client at every latency, ``rounds`` times; returns inputs/s and ratios per
    latency and round, and the median ratios per latency."""
    import clarifai.client.user  # noqa: F401  (its import configures the "clarifai" logger)

    from clarifai_connect.plugins import get_registry

    clarifai_connect.sync  # noqa: B018  (imports the engine, as the SDK was imported)
    get_registry()  # the connector plugins, imported once per process
    logging.getLogger("clarifai").setLevel(logging.ERROR)  # a warning per batch otherwise
    out: dict = {"inputs": total, "threads": threads, "sync_workers": sync_workers,
                 "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        items = write_images(root, total)
        for round_ in range(rounds):
            for n, latency in enumerate(latencies):
                data_dir = Path(tmp) / f"server{round_}-{n}"
                with server_process(str(data_dir), latency=latency) as server:
                    raw = _raw(server, items, threads, "raw")
                    sdk = _sdk(server, root, total, "sdk")
                    ours, reached = _sync(server, root, total, sync_workers, "sync",
                                          Path(tmp) / f"state{round_}-{n}")
                out["rows"].append({
                    "round": round_ + 1, "latency_s": latency, "raw_stub_per_s": round(raw),
                    "sdk_per_s": round(sdk), "sync_per_s": round(ours),
                    "sync_workers": reached, "sync_vs_sdk": round(ours / sdk, 2),
                    "sync_vs_stub": round(ours / raw, 2)})
    out["medians"] = [{
        "latency_s": latency,
        **{key: round(statistics.median(r[key] for r in out["rows"]
                                        if r["latency_s"] == latency), 2)
           for key in ("sync_vs_sdk", "sync_vs_stub")}} for latency in latencies]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.05,
                        help="The second round's injected latency per call (seconds).")
    parser.add_argument("--threads", type=int, default=4,
                        help="The raw stub's threads.")
    parser.add_argument("--sync-workers", default="auto",
                        help="The sync's workers: a number, or auto (adaptive).")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    workers = args.sync_workers if args.sync_workers == "auto" else int(args.sync_workers)
    print(json.dumps(run(args.inputs, (0.0, args.latency), args.threads, workers,
                         args.rounds), indent=2))


if __name__ == "__main__":
    main()
