"""Runners over the real local server: a Runner subclass serves predictions of a model to
concurrent callers, failures per input, no runner alive, the ProcessRunnerItems stream, and
the User runner methods."""

import _thread
import threading
import time
import uuid
from collections import Counter

import grpc
import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from clarifai_grpc.grpc.api.status import status_pb2

from clarifai_connect.client import App, Runner, User
from clarifai_connect.errors import ApiError, UserError


class Upper(Runner):
    """Upper-cases text; remembers every input id it saw; fails inputs saying 'boom'."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = Counter()
        self.lock = threading.Lock()

    def run_input(self, input, output_info):
        with self.lock:
            self.seen[input.id] += 1
        text = input.data.text.raw
        if "boom" in text:
            raise ValueError(f"cannot take {text!r}")
        suffix = output_info.params["suffix"] if "suffix" in output_info.params else ""
        return resources_pb2.Output(data=resources_pb2.Data(
            text=resources_pb2.Text(raw=text.upper() + suffix)))


@pytest.fixture
def served(clarifai_server, clarifai_pat, clarifai_app, clarifai_raw):
    """A model (text-embedder type: a version needs no training) and a runner for it."""
    model_id = f"m-{uuid.uuid4().hex[:8]}"
    resp = clarifai_raw.call("PostModels", service_pb2.PostModelsRequest(
        user_app_id=clarifai_app.user_app_id,
        models=[resources_pb2.Model(id=model_id, model_type_id="text-embedder")]))
    assert resp.status.code == codes.SUCCESS, resp.status
    resp = clarifai_raw.call("PostModelVersions", service_pb2.PostModelVersionsRequest(
        user_app_id=clarifai_app.user_app_id, model_id=model_id,
        model_versions=[resources_pb2.ModelVersion()]))
    assert resp.status.code == codes.SUCCESS, resp.status
    user = User(clarifai_app.user_id, base_url=clarifai_server.base_url, pat=clarifai_pat)
    runner_id = f"r-{uuid.uuid4().hex[:8]}"
    user.create_runner(runner_id, labels=[model_id], description="test runner")
    app = App(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
              base_url=clarifai_server.base_url, pat=clarifai_pat)
    yield app, app.model(model_id), runner_id
    user.delete_runner(runner_id)


def _text(input_id: str, text: str) -> resources_pb2.Input:
    return resources_pb2.Input(id=input_id, data=resources_pb2.Data(
        text=resources_pb2.Text(raw=text)))


def test_runner_serves_concurrent_callers_each_input_once(served, clarifai_server, clarifai_pat):
    app, model, runner_id = served
    runner = Upper(runner_id, user_id=app.user_id, base_url=clarifai_server.base_url,
                   pat=clarifai_pat, num_parallel_polls=3)
    thread = runner.start_in_background()
    answers: dict[str, str] = {}
    errors: list[BaseException] = []

    def caller(n: int) -> None:
        try:
            for start in range(0, 20, 5):  # 20 inputs, in 4 calls of 5
                inputs = [_text(f"c{n}-i{k}", f"caller {n} input {k}")
                          for k in range(start, start + 5)]
                response = model.predict(inputs)
                for inp, out in zip(inputs, response.outputs, strict=True):
                    assert out.status.code == codes.SUCCESS, out.status
                    assert out.input.id == inp.id
                    answers[inp.id] = out.data.text.raw
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    callers = [threading.Thread(target=caller, args=(n,)) for n in range(10)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(120)
    runner.stop()
    thread.join(10)
    assert not errors, errors[0]
    assert len(answers) == 200
    assert all(answers[f"c{n}-i{k}"] == f"CALLER {n} INPUT {k}"
               for n in range(10) for k in range(20))
    assert set(runner.seen) == set(answers) and set(runner.seen.values()) == {1}  # none twice
    assert not thread.is_alive() and not runner.running


def test_failing_inputs_give_mixed_status(served, clarifai_server, clarifai_pat):
    app, model, runner_id = served
    runner = Upper(runner_id, user_id=app.user_id, base_url=clarifai_server.base_url,
                   pat=clarifai_pat, num_parallel_polls=1)
    thread = runner.start_in_background()
    try:
        with pytest.raises(ApiError) as err:
            model.predict([_text("ok", "fine"), _text("bad", "boom")],
                          inference_params={"suffix": "!"})
        assert err.value.code == codes.MIXED_STATUS
        outputs = {o.input.id: o for o in err.value.response.outputs}
        assert outputs["ok"].status.code == codes.SUCCESS
        assert outputs["ok"].data.text.raw == "FINE!"  # the request's params reached it
        assert outputs["bad"].status.code == codes.MODEL_PREDICTION_FAILED
        assert "cannot take 'boom'" in outputs["bad"].status.details
        with pytest.raises(ApiError) as err:
            model.predict([_text("bad2", "boom boom")])
        assert err.value.code == codes.FAILURE
    finally:
        runner.stop()
        thread.join(10)


def test_no_runner_alive_ends_with_model_not_deployed(served, clarifai_raw, clarifai_app):
    app, model, runner_id = served
    request = service_pb2.PostModelOutputsRequest(
        user_app_id=clarifai_app.user_app_id, model_id=model.id, inputs=[_text("x", "hello")])
    # Within the caller's deadline, the call ends with a clear status (not DEADLINE_EXCEEDED).
    response = clarifai_raw.call("PostModelOutputs", request, timeout=4)
    assert response.status.code == codes.MODEL_NOT_DEPLOYED, response.status
    assert runner_id in response.status.details


def test_stop_and_ctrl_c_end_the_run_loop(served, clarifai_server, clarifai_pat):
    app, model, runner_id = served
    runner = Upper(runner_id, user_id=app.user_id, base_url=clarifai_server.base_url,
                   pat=clarifai_pat, num_parallel_polls=2)
    thread = runner.start_in_background()
    assert model.predict([_text("a", "one")]).outputs[0].data.text.raw == "ONE"
    runner.stop()
    thread.join(10)
    assert not thread.is_alive() and not runner.running
    # Ctrl-C in the thread that runs start(): it stops the pollers and returns. While it
    # runs (in this, the main thread), another thread predicts, then presses Ctrl-C.
    seen = {}

    def predict_then_interrupt():
        try:
            seen["answer"] = model.predict([_text("b", "two")]).outputs[0].data.text.raw
        finally:
            _thread.interrupt_main()

    helper = threading.Thread(target=predict_then_interrupt)
    helper.start()
    runner.start()
    helper.join(10)
    assert seen["answer"] == "TWO"  # start() served until it was interrupted
    assert not runner.running


def test_process_runner_items_stream(served, clarifai_raw, clarifai_app):
    app, model, runner_id = served
    ids = resources_pb2.UserAppIDSet(user_id=clarifai_app.user_id)
    outgoing: list = [service_pb2.PostRunnerItemOutputsRequest(
        user_app_id=ids, runner_id=runner_id,
        status=status_pb2.Status(code=codes.RUNNER_STREAM_START))]
    ready = threading.Condition()

    def requests():
        sent = 0
        while True:
            with ready:
                while sent >= len(outgoing):
                    ready.wait()
                message = outgoing[sent]
            sent += 1
            if message is None:
                return
            yield message

    stream = clarifai_raw.stub.ProcessRunnerItems(requests(), metadata=clarifai_raw.metadata)
    result = {}
    caller = threading.Thread(target=lambda: result.setdefault(
        "response", model.predict([_text("s1", "streamed")])))
    caller.start()
    try:
        first = next(stream)
        assert first.status.code == codes.SUCCESS
        item = first.runner_items[0]
        assert item.post_model_outputs_request.inputs[0].data.text.raw == "streamed"
        answer = service_pb2.MultiOutputResponse(outputs=[resources_pb2.Output(
            status=status_pb2.Status(code=codes.SUCCESS),
            data=resources_pb2.Data(text=resources_pb2.Text(raw="via stream")))])
        with ready:
            outgoing.append(service_pb2.PostRunnerItemOutputsRequest(
                user_app_id=ids, runner_id=runner_id, runner_item_id=item.id,
                runner_item_outputs=[service_pb2.RunnerItemOutput(
                    multi_output_response=answer)]))
            ready.notify_all()
        caller.join(30)
        assert result["response"].outputs[0].data.text.raw == "via stream"
    finally:
        with ready:
            outgoing.append(None)
            ready.notify_all()
        stream.cancel()


def test_list_runner_items_asks_to_retry_when_idle(served, clarifai_raw, clarifai_app):
    app, model, runner_id = served
    ids = resources_pb2.UserAppIDSet(user_id=clarifai_app.user_id)
    idle = clarifai_raw.call("ListRunnerItems", service_pb2.ListRunnerItemsRequest(
        user_app_id=ids, runner_id=runner_id))
    assert idle.status.code == codes.RUNNER_NEEDS_RETRY and not idle.runner_items
    unknown = clarifai_raw.call("PostRunnerItemOutputs", service_pb2.PostRunnerItemOutputsRequest(
        user_app_id=ids, runner_id=runner_id, runner_item_id="nope"))
    assert unknown.status.code == codes.RUNNER_ITEM_CANCELLED
    missing = clarifai_raw.call("ListRunnerItems", service_pb2.ListRunnerItemsRequest(
        user_app_id=ids, runner_id="no-such-runner"))
    assert missing.status.code == codes.RUNNER_DOES_NOT_EXIST


def test_user_runner_methods(clarifai_server, clarifai_pat):
    name = f"u-{uuid.uuid4().hex[:8]}"
    user = User(name, base_url=clarifai_server.base_url, pat=clarifai_server.key_for(name))
    created = user.create_runner("laptop", labels=["my-model"], description="laptop runner")
    assert isinstance(created, Runner)
    assert (created.id, list(created.labels), created.description) == \
        ("laptop", ["my-model"], "laptop runner")
    user.create_runner("desktop", labels=[])
    user.create_runner("spare-1", labels=[])
    user.create_runner("spare-2", labels=[])
    user.delete_runner(["spare-1", "spare-2"])
    assert user.runner("laptop").description == "laptop runner"
    assert [r.id for r in user.list_runners()] == ["laptop", "desktop"]
    assert [r.id for r in user.list_runners(page_no=2, per_page=1)] == ["desktop"]
    with pytest.raises(ApiError) as err:
        user.create_runner("laptop", labels=[])
    assert err.value.code == codes.CONN_INVALID_REQUEST
    user.delete_runner("laptop")
    with pytest.raises(ApiError) as err:
        user.runner("laptop")
    assert err.value.code == codes.RUNNER_DOES_NOT_EXIST
    with pytest.raises(ApiError) as err:
        Runner("laptop", user_id=user.user_id, base_url=clarifai_server.base_url,
               pat=user.auth.pat)  # check_runner_exists
    assert err.value.code == codes.RUNNER_DOES_NOT_EXIST
    with pytest.raises(UserError, match="num_parallel_polls"):
        Runner("desktop", user_id=user.user_id, num_parallel_polls=0,
               base_url=clarifai_server.base_url, pat=user.auth.pat)
    with pytest.raises(NotImplementedError):
        Runner("desktop", user_id=user.user_id, base_url=clarifai_server.base_url,
               pat=user.auth.pat).run_input(resources_pb2.Input(), resources_pb2.OutputInfo())


def test_compute_clusters_and_nodepools(clarifai_server):
    from clarifai_connect.testing import raw_api

    ids = resources_pb2.UserAppIDSet(user_id=f"u-{uuid.uuid4().hex[:8]}")
    call = raw_api(clarifai_server, clarifai_server.key_for(ids.user_id)).call
    assert call("PostComputeClusters", service_pb2.PostComputeClustersRequest(
        user_app_id=ids, compute_clusters=[resources_pb2.ComputeCluster(id="cc")])
        ).status.code == codes.SUCCESS
    assert call("PostNodepools", service_pb2.PostNodepoolsRequest(
        user_app_id=ids, compute_cluster_id="cc", nodepools=[resources_pb2.Nodepool(id="np")])
        ).nodepools[0].compute_cluster.id == "cc"
    worker = resources_pb2.Worker(model=resources_pb2.Model(id="m", app_id="a"))
    runner = call("PostRunners", service_pb2.PostRunnersRequest(
        user_app_id=ids, compute_cluster_id="cc", nodepool_id="np",
        runners=[resources_pb2.Runner(id="r", worker=worker)])).runners[0]
    assert runner.nodepool.id == "np" and runner.worker.model.user_id == ids.user_id
    listed = call("ListRunners", service_pb2.ListRunnersRequest(
        user_app_id=ids, compute_cluster_id="cc", nodepool_id="np"))
    assert [r.id for r in listed.runners] == ["r"]
    assert call("GetNodepool", service_pb2.GetNodepoolRequest(
        user_app_id=ids, compute_cluster_id="cc", nodepool_id="zz")).status.code == \
        codes.NODEPOOL_DOES_NOT_EXIST
    assert call("PostRunners", service_pb2.PostRunnersRequest(
        user_app_id=ids, compute_cluster_id="cc", nodepool_id="zz",
        runners=[resources_pb2.Runner(id="r2")])).status.code == codes.NODEPOOL_DOES_NOT_EXIST
    assert [c.id for c in call("ListComputeClusters", service_pb2.ListComputeClustersRequest(
        user_app_id=ids)).compute_clusters] == ["cc"]
    assert call("DeleteComputeClusters", service_pb2.DeleteComputeClustersRequest(
        user_app_id=ids, ids=["cc"])).status.code == codes.SUCCESS
    assert call("GetComputeCluster", service_pb2.GetComputeClusterRequest(
        user_app_id=ids, compute_cluster_id="cc")).status.code == \
        codes.COMPUTE_CLUSTER_DOES_NOT_EXIST


def test_stream_rpc_refuses_a_bad_key(clarifai_raw):
    stream = clarifai_raw.stub.ProcessRunnerItems(
        iter([service_pb2.PostRunnerItemOutputsRequest(runner_id="r")]),
        metadata=(("authorization", "Key wrong"),))
    try:
        first = next(stream)
        assert first.status.code != codes.SUCCESS
    except grpc.RpcError as err:  # pragma: no cover - either way it is refused
        pytest.fail(f"refused as a transport error: {err}")


def test_a_cancelled_caller_takes_its_item_back(served, clarifai_raw, clarifai_app):
    app, model, runner_id = served
    ids = resources_pb2.UserAppIDSet(user_id=clarifai_app.user_id)
    future = clarifai_raw.stub.PostModelOutputs.future(service_pb2.PostModelOutputsRequest(
        user_app_id=clarifai_app.user_app_id, model_id=model.id,
        inputs=[_text("gone", "never mind")]), metadata=clarifai_raw.metadata, timeout=30)
    time.sleep(0.3)
    future.cancel()
    time.sleep(1.0)  # the server notices within half a second
    polled = clarifai_raw.call("ListRunnerItems", service_pb2.ListRunnerItemsRequest(
        user_app_id=ids, runner_id=runner_id))
    assert polled.status.code == codes.RUNNER_NEEDS_RETRY and not polled.runner_items
