"""Retries under the server's fault injection, and credentials kept out of logs, reprs and
error messages."""

import logging
import secrets
import uuid

import pytest
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from clarifai_connect.client import App, Inputs, RetryPolicy, User
from clarifai_connect.errors import ApiClientError, ApiError, UserError
from clarifai_connect.server import LocalServer

FAST = RetryPolicy(initial=0.005, cap=0.02, deadline=30.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LocalServer(data_dir=tmp_path_factory.mktemp("faulty"), user="retry-user") as srv:
        yield srv


@pytest.fixture
def app(server):
    server.faults.configure(rate=0.0, latency=0.0, methods=(), budget=None, seed=None)
    user = User("retry-user", base_url=server.base_url, pat=server.keys[0])
    user.retry_policy = FAST
    app = user.create_app(f"app-{uuid.uuid4().hex[:8]}")
    app.retry_policy = FAST
    yield app
    server.faults.configure(rate=0.0)
    user.delete_app(app.app_id)


@pytest.mark.parametrize("kind", ["unavailable", "throttle"])
def test_transient_faults_are_retried(server, app, kind):
    server.faults.configure(rate=0.5, kind=kind, seed=7)
    for i in range(12):
        app.create_dataset(f"d{i}")
    assert [d.id for d in app.list_datasets()] == [f"d{i}" for i in range(12)]
    assert server.faults.injected > 3  # faults did happen, and every call still succeeded


def test_a_budget_of_faults_is_absorbed_by_one_call(server, app):
    server.faults.configure(rate=1.0, kind="unavailable", budget=4)
    assert list(app.list_datasets()) == []
    assert server.faults.injected == 4


def test_persistent_unavailability_ends_in_a_client_error(server, app):
    app.retry_policy = RetryPolicy(initial=0.01, cap=0.05, deadline=0.3)
    server.faults.configure(rate=1.0, kind="unavailable", methods=["ListDatasets"])
    with pytest.raises(ApiClientError, match=r"ListDatasets failed after \d+ attempts"):
        list(app.list_datasets())
    assert server.faults.injected >= 2


def test_persistent_throttling_ends_in_an_api_error(server, app):
    app.retry_policy = RetryPolicy(initial=0.01, cap=0.05, deadline=0.3)
    server.faults.configure(rate=1.0, kind="throttle", methods=["GetDataset"])
    with pytest.raises(ApiError) as err:
        app.dataset("anything")
    assert err.value.code == codes.CONN_THROTTLED
    assert server.faults.injected >= 2


def test_application_errors_are_not_retried(server, app):
    server.faults.configure(rate=0.0)
    with pytest.raises(ApiError) as err:
        app.dataset("missing")
    assert err.value.code == codes.CONN_DOES_NOT_EXIST and "missing" in err.value.details


def test_bulk_upload_under_faults_lands_every_input_once(server, app):
    server.faults.configure(rate=0.3, kind="unavailable", seed=3,
                            methods=["PostInputs", "GetInputsAddJob", "ListInputs",
                                     "PostAnnotations"])
    inputs = app.inputs()
    inputs.retry_policy = FAST
    protos = [Inputs.get_text_input(f"t{i}", f"text {i}", labels=["x"]) for i in range(200)]
    # Text inputs land in their PostInputs call (nothing else to poll), so small batches
    # give ~100 fault-eligible calls: at rate 0.3, fewer than 6 faults is practically nil.
    summary = inputs._bulk_upload(protos, batch_size=2)
    injected = server.faults.injected
    server.faults.configure(rate=0.0)
    assert injected > 5  # faults did happen
    assert summary.ok and summary.uploaded + summary.already_present == 200
    ids = [i.id for i in inputs.list_inputs()]
    assert sorted(ids) == sorted(f"t{i}" for i in range(200))
    assert summary.annotations_uploaded == 0  # labels travel inline with the inputs


def test_credentials_never_show(server, caplog):
    caplog.set_level(logging.DEBUG)
    pat = server.add_key(f"secret-user:{secrets.token_hex(16)}")
    user = User("secret-user", base_url=server.base_url, pat=pat)
    user.retry_policy = RetryPolicy(initial=0.01, cap=0.02, deadline=0.2)
    texts = [repr(user), str(user), repr(user.auth), str(user.auth)]
    server.faults.configure(rate=1.0, kind="throttle", methods=(), budget=None)
    with pytest.raises(ApiError) as throttled:
        user.create_app("never")
    server.faults.configure(rate=0.0)
    texts += [str(throttled.value), repr(throttled.value)]
    with pytest.raises(ApiError) as missing:
        user.app("nope")
    texts += [str(missing.value), repr(missing.value)]

    wrong_pat = "wrong-" + secrets.token_hex(16)
    stranger = App(user_id="u", app_id="a", base_url=server.base_url, pat=wrong_pat)
    with pytest.raises(ApiError) as refused:
        list(stranger.list_datasets())
    assert refused.value.code == codes.CONN_KEY_INVALID
    texts += [str(refused.value), repr(stranger), repr(stranger.auth)]

    leaked = ApiError("GetApp", codes.FAILURE, "echo", f"authorization: Key {pat}")
    texts += [str(leaked), leaked.details]
    with pytest.raises(UserError) as no_key:
        User("u", base_url="https://api.example.invalid")
    texts.append(str(no_key.value))

    everything = "\n".join(texts) + caplog.text
    assert "too many requests" in everything  # the checks below look at real output
    assert pat not in everything and wrong_pat not in everything


def test_one_table_maps_failure_codes_to_error_classes():
    import grpc

    from clarifai_connect.client.base import Fault, fault_of

    assert fault_of(grpc.StatusCode.UNAVAILABLE) == Fault(ApiClientError, transient=True)
    assert fault_of(grpc.StatusCode.PERMISSION_DENIED) == Fault(ApiClientError, transient=False)
    assert fault_of(None) == Fault(ApiClientError, transient=False)  # an error that is not a gRPC status
    assert fault_of(codes.CONN_THROTTLED) == Fault(ApiError, transient=True)
    assert fault_of(codes.INPUT_DOES_NOT_EXIST) == Fault(ApiError, transient=False)


def test_the_method_cache_follows_the_channel_object():
    import gc

    import grpc

    from clarifai_connect.client import base

    channel = grpc.insecure_channel("127.0.0.1:9")
    fn = base._method(channel, "GetApp")
    assert base._method(channel, "GetApp") is fn  # cached per channel
    other = grpc.insecure_channel("127.0.0.1:9")
    assert base._method(other, "GetApp") is not fn  # never another channel's callable
    count = len(base._methods)
    channel.close()
    del channel, fn
    gc.collect()
    assert len(base._methods) == count - 1  # the entry went with its channel
    other.close()
