"""Ingest throughput of the local server with embeddings on, as a ratio to embeddings off.

Two fresh servers in this process (``embedders={}`` and the default ones) are fed the same
pre-built PostInputs batches (128 inputs each: small distinct JPEG pictures, or texts) by
the same raw-stub client threads. The figure is the ingest rate with the background
embedder running as a ratio to the rate without it (the goal: at least 0.8); the time the
embedder then needs to finish the backlog is reported beside it.

    python -m bench.ingest_embeddings [--inputs 10000] [--threads 4] [--kind image|text]
                                      [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import tempfile
import time
import uuid

from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from bench.server_post_inputs import batched_requests, drive
from clarifai_connect.server import LocalServer
from clarifai_connect.testing import raw_api

WORDS = ("dog cat park sun rain city river car road tree house garden beach snow night "
         "market train bridge forest mountain").split()


def picture(n: int) -> bytes:
    """A distinct 64×48 JPEG of a few coloured blocks (a few KB, like a thumbnail)."""
    from PIL import Image

    rng = random.Random(n)
    img = Image.new("RGB", (8, 6))
    img.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(48)])
    out = io.BytesIO()
    img.resize((64, 48)).save(out, format="JPEG", quality=85)
    return out.getvalue()


def sentence(n: int) -> str:
    rng = random.Random(n)
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))


def build_batches(total: int, user_app: resources_pb2.UserAppIDSet, kind: str) -> list:
    """Pre-built PostInputs requests of up to 128 labelled inputs each."""
    prefix = uuid.uuid4().hex[:8]

    def item(n: int) -> resources_pb2.Input:
        data = (resources_pb2.Data(image=resources_pb2.Image(base64=picture(n)))
                if kind == "image" else resources_pb2.Data(text=resources_pb2.Text(
                    raw=sentence(n))))
        data.concepts.add(id=f"c{n % 10}", value=1.0)
        return resources_pb2.Input(id=f"{prefix}-{n}", data=data)

    return batched_requests((item(n) for n in range(total)), user_app)


def _measure(embedders, total: int, threads: int, kind: str) -> tuple[float, float, int]:
    """(inputs/s of ingest, seconds until all embedded after ingest, inputs embedded)."""
    with tempfile.TemporaryDirectory() as data_dir, \
            LocalServer(data_dir=data_dir, embedders=embedders, user="bench") as server:
        api = raw_api(server)
        user_app = resources_pb2.UserAppIDSet(user_id="bench", app_id="bench")
        api.call("PostApps", service_pb2.PostAppsRequest(
            user_app_id=user_app, apps=[resources_pb2.App(id="bench")]))
        api.channel.close()
        rate = drive(server, build_batches(total, user_app, kind), threads)
        start = time.perf_counter()
        server.embeddings.wait(None, timeout=3600)
        backlog = time.perf_counter() - start
        embedded = server.store.read().execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    return rate, backlog, embedded


def run(total: int = 10000, threads: int = 4, kind: str = "image", rounds: int = 3) -> dict:
    """Ingest with embeddings off, then on, ``rounds`` times alternating (the machine may be
    shared); the medians and their ratio."""
    offs, ons, backlogs, embedded, none = [], [], [], 0, 0
    for _ in range(rounds):
        off, _, none = _measure({}, total, threads, kind)
        on, backlog, embedded = _measure(None, total, threads, kind)
        offs.append(off)
        ons.append(on)
        backlogs.append(backlog)
    off, on = statistics.median(offs), statistics.median(ons)
    return {"inputs": total, "kind": kind, "threads": threads, "rounds": rounds,
            "off_inputs_per_s": round(off), "on_inputs_per_s": round(on),
            "ratio": round(on / off, 3),
            "backlog_s_after_ingest": round(statistics.median(backlogs), 2),
            "embedded": embedded, "embedded_when_off": none}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--kind", choices=["image", "text"], default="image")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.inputs, args.threads, args.kind, args.rounds), indent=2))


if __name__ == "__main__":
    main()
