"""Runner-served predictions: the overhead of the runner round trip, as ratios in one run.

A local server, a model served by a ``Runner`` subclass that upper-cases text, and
``--callers`` threads each sending ``--calls`` single-input PostModelOutputs. Measured:

- ``direct``: the same callers calling a no-op RPC of the server (GetModel), the baseline
  of one gRPC round trip per call,
- ``runner_polls_1`` / ``runner_polls_N``: the predictions answered by the Runner polling
  with 1 and with ``--polls`` threads (each answer is a claim, a compute and a post back).

It prints one JSON object: calls per second of each and the ratios to ``direct``.

    python -m bench.runner_ratio [--callers 10] [--calls 20] [--polls 4]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time

from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from clarifai_connect.client import App, Runner, User
from clarifai_connect.server import LocalServer


class Upper(Runner):
    """Upper-cases the input's text."""

    def run_input(self, input, output_info):
        return resources_pb2.Output(data=resources_pb2.Data(
            text=resources_pb2.Text(raw=input.data.text.raw.upper())))


def _rate(callers: int, calls: int, fn) -> float:
    def work(n: int) -> None:
        for k in range(calls):
            fn(n, k)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(callers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return callers * calls / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=10)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--polls", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalServer(data_dir=tmp, workers=32) as server:
        pat = server.keys[0]
        user = User("me", base_url=server.base_url, pat=pat)
        app = user.create_app("bench")
        app.create_model("upper", model_type_id="text-embedder").create_version()
        model = App(user_id="me", app_id="bench", base_url=server.base_url,
                    pat=pat).model("upper")
        user.create_runner("bench-runner", labels=["upper"])

        def predict(n: int, k: int) -> None:
            out = model.predict([resources_pb2.Input(id=f"c{n}-{k}", data=resources_pb2.Data(
                text=resources_pb2.Text(raw=f"caller {n} call {k}")))]).outputs[0]
            assert out.data.text.raw == f"CALLER {n} CALL {k}"

        request = service_pb2.GetModelRequest(user_app_id=model.user_app_id, model_id="upper")
        result = {"direct": _rate(args.callers, args.calls,
                                  lambda n, k: model._call("GetModel", request))}
        for polls in sorted({1, args.polls}):
            runner = Upper("bench-runner", user_id="me", base_url=server.base_url, pat=pat,
                           num_parallel_polls=polls)
            runner.start_in_background()
            result[f"runner_polls_{polls}"] = _rate(args.callers, args.calls, predict)
            runner.stop()
        base = result["direct"]
        print(json.dumps({**{f"{k}_calls_per_s": round(v, 1) for k, v in result.items()},
                          **{f"{k}_ratio": round(v / base, 3) for k, v in result.items()
                             if k != "direct"}}))


if __name__ == "__main__":
    main()
