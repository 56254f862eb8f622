"""Search latency of the local server (filter + rank over gRPC), as a ratio to a bare numpy
dot product over the same vectors, at 10,000 and 100,000 inputs.

For each size a fresh server in this process gets that many text inputs (sentences of a
small vocabulary, concept ``c{n % 10}``, metadata ``{"group": n % 100}``) and embeds them;
then, over the raw stub, the median latency of:

- ``rank``: the 10 texts most like a sentence (the whole app ranked);
- ``filter_rank``: the same among the inputs labelled ``c3`` (a tenth of them);
- ``filter``: the first page of inputs labelled ``c3`` with group 73 (no rank);

and of the baseline: ``matrix @ query`` over the app's vectors plus a top-10 selection
(``argpartition``), in numpy, in the same process, timed in alternation with each search.
Each ratio is the search's median latency / the baseline's.

    python -m bench.search_latency [--sizes 10000,100000] [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import numpy as np
from clarifai_grpc.grpc.api import resources_pb2 as r
from clarifai_grpc.grpc.api import service_pb2 as s
from clarifai_grpc.grpc.api.status import status_code_pb2
from google.protobuf import struct_pb2

from bench.ingest_embeddings import sentence
from bench.server_post_inputs import batched_requests, drive
from clarifai_connect.server import LocalServer
from clarifai_connect.testing import raw_api

QUERY_TEXT = "a dog runs in the park by the river"
MIN_SIZE = 1000


def _requests(total: int, user_app: r.UserAppIDSet) -> list:
    def item(n: int) -> r.Input:
        meta = struct_pb2.Struct()
        meta.update({"group": n % 100})
        return r.Input(id=f"t{n}", data=r.Data(
            text=r.Text(raw=sentence(n)), concepts=[r.Concept(id=f"c{n % 10}", value=1.0)],
            metadata=meta))

    return batched_requests((item(n) for n in range(total)), user_app)


def _paired_ms(fn, baseline, repeats: int) -> tuple[float, float]:
    """Median milliseconds of ``fn`` and of ``baseline``, timed in alternation (the machine
    may be shared: both see the same load)."""
    fn(), baseline()  # warm: index loaded, statements prepared
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for target, out in ((fn, times[0]), (baseline, times[1])):
            start = time.perf_counter()
            target()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]) * 1000, statistics.median(times[1]) * 1000


def measure(total: int, repeats: int = 15) -> dict:
    """The figures of one app of ``total`` inputs."""
    with tempfile.TemporaryDirectory() as data_dir, \
            LocalServer(data_dir=data_dir, user="bench") as server:
        api = raw_api(server)
        user_app = r.UserAppIDSet(user_id="bench", app_id="bench")
        api.call("PostApps", s.PostAppsRequest(user_app_id=user_app, apps=[r.App(id="bench")]))
        start = time.perf_counter()
        drive(server, _requests(total, user_app), 4)
        server.embeddings.wait(None, timeout=3600)
        server.search_index.catch_up()
        loaded = time.perf_counter() - start
        pk = server.store.read().execute("SELECT pk FROM apps WHERE id='bench'").fetchone()[0]
        ids, matrix = server.embeddings.index(pk, "wordllama").vectors([f"t{n}" for n in
                                                                       range(total)])
        query_vector = server.embeddings.embed(pk, "text", QUERY_TEXT)
        rank = r.Rank(annotation=r.Annotation(data=r.Data(text=r.Text(raw=QUERY_TEXT))))
        c3 = r.Filter(annotation=r.Annotation(data=r.Data(concepts=[r.Concept(id="c3",
                                                                             value=1)])))
        group = struct_pb2.Struct()
        group.update({"group": 73})
        g73 = r.Filter(annotation=r.Annotation(data=r.Data(metadata=group)))

        def search(filters, ranks):
            def call():
                resp = api.call("PostInputsSearches", s.PostInputsSearchesRequest(
                    user_app_id=user_app, pagination=s.Pagination(page=1, per_page=10),
                    searches=[r.Search(query=r.Query(filters=filters, ranks=ranks),
                                       metric=r.Search.COSINE_DISTANCE)]))
                assert resp.status.code == status_code_pb2.SUCCESS, resp.status
                assert len(resp.hits) == 10
            return call

        def bare_numpy():
            sims = matrix @ query_vector
            top = np.argpartition(-sims, 9)[:10]
            return top[np.argsort(-sims[top])]

        figures = {name: _paired_ms(search(filters, ranks), bare_numpy, repeats)
                   for name, filters, ranks in (("rank", [], [rank]),
                                                ("filter_rank", [c3], [rank]),
                                                ("filter", [c3, g73], []))}
        api.channel.close()
    out = {"inputs": total, "vectors": len(ids), "load_and_embed_s": round(loaded, 1)}
    for name, (ms, numpy_ms) in figures.items():
        out.update({f"{name}_ms": round(ms, 2), f"{name}_numpy_ms": round(numpy_ms, 3),
                    f"{name}_ratio": round(ms / numpy_ms, 1)})
    return out


def run(sizes: tuple[int, ...] = (10_000, 100_000), repeats: int = 15) -> list[dict]:
    """The figures at every size."""
    return [measure(size, repeats) for size in sizes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    sizes = tuple(int(x) for x in args.sizes.split(","))
    if min(sizes) < MIN_SIZE:
        # ``filter`` (c3 and group 73) matches one input in 100: a full page needs 1,000.
        parser.error(f"--sizes: each size must be at least {MIN_SIZE}")
    print(json.dumps(run(sizes, args.repeats), indent=2))


if __name__ == "__main__":
    main()
