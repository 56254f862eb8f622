"""ListInputs / StreamInputs paging cost: the last page of a large app against the first.

One local server (no embedders: nothing else competes), one app of ``--inputs`` small text
inputs, then every page walked in order with ListInputs (page, per_page) and with
StreamInputs (last_id). Each figure is the median time of ``--sample`` pages at the start
and at the end of the walk; the ratio last/first is what keyset paging keeps near 1 (with
OFFSET it grows with the app). ``list_cold_last_ratio`` is a jump straight to the last page
of a fresh server, which still walks the (seq) index, without reading rows.

    python -m bench.list_pages [--inputs 100000] [--per-page 128]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from clarifai_connect.server import LocalServer
from clarifai_connect.testing import raw_api

from .server_post_inputs import batched_requests, drive


def _timed(api, method: str, request) -> tuple[float, object]:
    start = time.perf_counter()
    resp = api.call(method, request)
    return time.perf_counter() - start, resp


def _ends(times: list[float], sample: int) -> tuple[float, float]:
    return statistics.median(times[:sample]), statistics.median(times[-sample:])


def run(total: int = 100_000, per_page: int = 128, sample: int = 5) -> dict:
    """Fill an app, walk it both ways; returns first/last page times (ms) and ratios."""
    user_app = resources_pb2.UserAppIDSet(user_id="bench", app_id="pages")
    with tempfile.TemporaryDirectory() as data_dir:
        with LocalServer(data_dir=data_dir, user="bench", embedders={}) as server:
            api = raw_api(server)
            api.call("PostApps", service_pb2.PostAppsRequest(
                user_app_id=user_app, apps=[resources_pb2.App(id="pages")]))
            drive(server, batched_requests((resources_pb2.Input(
                id=f"t{n:07d}", data=resources_pb2.Data(text=resources_pb2.Text(raw=f"t{n}")))
                for n in range(total)), user_app), threads=2)
            pages = -(-total // per_page)
            list_times, seen = [], 0
            for page in range(1, pages + 1):
                took, resp = _timed(api, "ListInputs", service_pb2.ListInputsRequest(
                    user_app_id=user_app, page=page, per_page=per_page))
                list_times.append(took)
                seen += len(resp.inputs)
            stream_times, streamed, last_id = [], 0, ""
            while True:
                took, resp = _timed(api, "StreamInputs", service_pb2.StreamInputsRequest(
                    user_app_id=user_app, per_page=per_page, last_id=last_id))
                if not resp.inputs:
                    break
                stream_times.append(took)
                streamed += len(resp.inputs)
                last_id = resp.inputs[-1].id
            api.channel.close()
        with LocalServer(data_dir=data_dir, user="bench", embedders={}) as server:
            api = raw_api(server)
            cold = [_timed(api, "ListInputs", service_pb2.ListInputsRequest(
                user_app_id=user_app, page=p, per_page=per_page))[0] for p in (1, pages)]
            api.channel.close()
    if seen != total or streamed != total:
        raise RuntimeError(f"listed {seen} and streamed {streamed} of {total} inputs")
    list_first, list_last = _ends(list_times, sample)
    stream_first, stream_last = _ends(stream_times, sample)
    return {"inputs": total, "per_page": per_page,
            "list_first_ms": round(list_first * 1e3, 2), "list_last_ms": round(list_last * 1e3, 2),
            "list_last_ratio": round(list_last / list_first, 2),
            "stream_first_ms": round(stream_first * 1e3, 2),
            "stream_last_ms": round(stream_last * 1e3, 2),
            "stream_last_ratio": round(stream_last / stream_first, 2),
            "list_cold_last_ratio": round(cold[1] / cold[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--per-page", type=int, default=128)
    parser.add_argument("--sample", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run(args.inputs, args.per_page, args.sample), indent=2))


if __name__ == "__main__":
    main()
