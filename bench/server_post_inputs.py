"""PostInputs throughput of the local server, as a ratio to a do-nothing V2 servicer.

Both servers are started in this process on loopback with the same gRPC options and fed
the same pre-built batches of 128 small images by the same raw-stub client threads, so
the ratio is the cost of persistence (validation, SQLite, blob files) in one number,
whatever the machine's speed.

The do-nothing servicer answers each request with a response of the size and shape the
local server sends (each input echoed with its hosted URLs, status and timestamps),
serialized before the clock starts, so that transport and the client's parsing cost the
same on both sides and the servicer does no work per input. (Until issue 14 it built an
``Input(id=…)`` per input in Python and sent a response 1/19 the size: ``ids_null_*``
still measures that one, for comparison with earlier figures.)

The measurements alternate (do-nothing, local, do-nothing, local, …) for ``--rounds``
rounds, each local round in a fresh server, and the medians are compared: a machine
shared with other work moves single runs by ±30%.

    python -m bench.server_post_inputs [--inputs 20000] [--threads 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from concurrent import futures

import grpc
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2

from clarifai_connect.server import LocalServer
from clarifai_connect.server.rpc import SERVICE
from clarifai_connect.server.runtime import GRPC_OPTIONS
from clarifai_connect.testing import raw_api

BATCH = 128


class NullServer:
    """A V2 server whose PostInputs accepts everything and stores nothing.

    ``responses``: the serialized answer to each request, by its first input's id (see
    :func:`echo_responses`); without it, each input is answered ``Input(id=…)``, built in
    Python (the baseline of the earlier sessions)."""

    def __init__(self, responses: dict[str, bytes] | None = None) -> None:
        def post_inputs(request, context):
            if responses is not None:
                return responses[request.inputs[0].id]
            return service_pb2.MultiInputResponse(
                status={"code": status_code_pb2.SUCCESS},
                inputs=[resources_pb2.Input(id=i.id) for i in request.inputs])

        serialize = (lambda m: m) if responses is not None else (lambda m: m.SerializeToString())
        handler = grpc.method_handlers_generic_handler(SERVICE, {
            "PostInputs": grpc.unary_unary_rpc_method_handler(
                post_inputs, request_deserializer=service_pb2.PostInputsRequest.FromString,
                response_serializer=serialize)})
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                                   options=GRPC_OPTIONS)
        self._server.add_generic_rpc_handlers((handler,))
        self.host, self.port, self.keys = "127.0.0.1", self._server.add_insecure_port(
            "127.0.0.1:0"), ["null"]

    def start(self) -> NullServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(0)


def echo_responses(requests: list, media_url: str = "http://127.0.0.1:40000") -> dict:
    """For each request, the serialized response the local server gives it (each input
    with a hosted URL, its concepts, status and timestamps), keyed by its first input's
    id: what :class:`NullServer` answers without doing any work."""
    out = {}
    suffix = "0" * 64
    for request in requests:
        response = service_pb2.MultiInputResponse(status={"code": status_code_pb2.SUCCESS})
        for posted in request.inputs:
            echoed = response.inputs.add(id=posted.id, status={
                "code": status_code_pb2.INPUT_DOWNLOAD_SUCCESS,
                "description": "Download complete"})
            echoed.data.concepts.extend(posted.data.concepts)
            echoed.data.image.url = f"{media_url}/media/orig/{suffix}"
            echoed.data.image.hosted.prefix = f"{media_url}/media"
            echoed.data.image.hosted.suffix = suffix
            echoed.data.image.hosted.sizes.append("orig")
            echoed.created_at.GetCurrentTime()
            echoed.modified_at.CopyFrom(echoed.created_at)
        out[request.inputs[0].id] = response.SerializeToString()
    return out


def tiny_png(n: int) -> bytes:
    """A distinct, valid 1x1 PNG per ``n`` (so blobs do not deduplicate)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    pixel = bytes([0, n & 255, (n >> 8) & 255, (n >> 16) & 255])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(pixel)) + chunk(b"IEND", b""))


def batched_requests(inputs, user_app: resources_pb2.UserAppIDSet) -> list:
    """PostInputs requests of up to 128 of ``inputs`` each."""
    inputs = list(inputs)
    return [service_pb2.PostInputsRequest(user_app_id=user_app, inputs=inputs[i:i + BATCH])
            for i in range(0, len(inputs), BATCH)]


def build_batches(total: int, user_app: resources_pb2.UserAppIDSet) -> list:
    """Pre-built PostInputs requests of up to 128 labelled images each."""
    prefix = uuid.uuid4().hex[:8]
    return batched_requests((resources_pb2.Input(id=f"{prefix}-{n}", data=resources_pb2.Data(
        image=resources_pb2.Image(base64=tiny_png(n)),
        concepts=[resources_pb2.Concept(id=f"c{n % 10}", value=1.0)])) for n in range(total)),
        user_app)


def drive(server, requests: list, threads: int) -> float:
    """Send every request over ``threads`` client threads; returns inputs per second."""
    api = raw_api(server)
    todo = list(requests)
    lock = threading.Lock()
    failures = []

    def worker() -> None:
        while True:
            with lock:
                if not todo:
                    return
                req = todo.pop()
            resp = api.call("PostInputs", req)
            if resp.status.code != status_code_pb2.SUCCESS:
                failures.append(resp.status.description)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    api.channel.close()
    if failures:
        raise RuntimeError(f"{len(failures)} batches failed: {failures[0]}")
    return sum(len(r.inputs) for r in requests) / elapsed


def _null_round(total: int, threads: int, echo: bool) -> float:
    requests = build_batches(total, resources_pb2.UserAppIDSet(user_id="b", app_id="b"))
    null = NullServer(echo_responses(requests) if echo else None).start()
    try:
        return drive(null, requests, threads)
    finally:
        null.stop()


def _local_round(total: int, threads: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as data_dir, \
            LocalServer(data_dir=data_dir, user="bench") as server:
        api = raw_api(server)
        user_app = resources_pb2.UserAppIDSet(user_id="bench", app_id="bench")
        api.call("PostApps", service_pb2.PostAppsRequest(
            user_app_id=user_app, apps=[resources_pb2.App(id="bench")]))
        local = drive(server, build_batches(total, user_app), threads)
        count = api.call("GetInputCount", service_pb2.GetInputCountRequest(user_app_id=user_app))
        api.channel.close()
        return local, count.counts.processed


def run(total: int = 20000, threads: int = 4, rounds: int = 3) -> dict:
    """Measure both servers ``rounds`` times, alternating, and return the medians
    (inputs/s) and their ratio; ``stored``: the fewest inputs a local round stored."""
    null, ids_null, local, stored = [], [], [], []
    for _ in range(rounds):
        null.append(_null_round(total, threads, echo=True))
        ids_null.append(_null_round(total, threads, echo=False))
        per_s, count = _local_round(total, threads)
        local.append(per_s)
        stored.append(count)
    null_s, ids_s, local_s = (statistics.median(v) for v in (null, ids_null, local))
    return {"inputs": total, "threads": threads, "rounds": rounds,
            "null_inputs_per_s": round(null_s), "local_inputs_per_s": round(local_s),
            "ratio": round(local_s / null_s, 3),
            "local_rounds": [round(v) for v in local], "null_rounds": [round(v) for v in null],
            "ids_null_inputs_per_s": round(ids_s), "ids_null_ratio": round(local_s / ids_s, 3),
            "stored": min(stored)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.inputs, args.threads, args.rounds), indent=2))


if __name__ == "__main__":
    main()
