"""Pytest fixtures for testing against a real local Clarifai server (entry point ``pytest11``),
and the conformance kit.

Connector authors get these by installing clarifai-connect: a running local server on
loopback whose key belongs to the user ``TEST_USER``, a raw gRPC stub to it, a fresh app of
that user per test, and a real S3 API (``s3_endpoint``, ``s3_bucket``: moto in server mode
on loopback); and :func:`check_reader` / :func:`check_writer` (see
:mod:`clarifai_connect.conformance`) to check that their reader and writer honour the
connector contract.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import grpc
import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2

from .conformance import (
    ConformanceError,
    ReaderCheck,
    WriterCheck,
    check_reader,
    check_writer,
    sample_records,
)
from .server import LocalServer

__all__ = [
    "AppRef", "ConformanceError", "DatasetRef", "RawApi", "ReaderCheck", "S3Endpoint",
    "WriterCheck", "check_reader", "check_writer", "clarifai_app", "clarifai_dataset",
    "clarifai_pat", "clarifai_raw", "clarifai_server", "raw_api", "s3_bucket", "s3_endpoint",
    "sample_records",
]

TEST_USER = "test-user"


@dataclass(frozen=True)
class RawApi:
    """A raw ``V2Stub`` to a server, with the metadata that authenticates its calls."""

    stub: service_pb2_grpc.V2Stub
    metadata: tuple[tuple[str, str], ...]
    channel: grpc.Channel

    def __repr__(self) -> str:
        return "RawApi(<stub>)"

    def call(self, method: str, request, **kwargs):
        """Call ``method`` with this API's metadata and return the response."""
        return getattr(self.stub, method)(request, metadata=self.metadata, **kwargs)


def raw_api(server: LocalServer, key: str | None = None) -> RawApi:
    """A raw stub to ``server``; ``key`` defaults to the server's first accepted key."""
    # A channel made through ClarifaiChannel sets the module-level response deserializer
    # that the generated V2Stub needs; the retry policy it adds is dropped here so that
    # tests see every fault.
    ClarifaiChannel.get_insecure_grpc_channel(base=server.host, port=server.port).close()
    channel = grpc.insecure_channel(
        f"{server.host}:{server.port}",
        options=[("grpc.max_receive_message_length", 1 << 30),
                 ("grpc.max_send_message_length", 1 << 30), ("grpc.enable_retries", 0)])
    key = key if key is not None else server.keys[0]
    return RawApi(service_pb2_grpc.V2Stub(channel), (("authorization", f"Key {key}"),), channel)


@dataclass(frozen=True)
class AppRef:
    """An app created for one test."""

    user_id: str
    app_id: str

    @property
    def user_app_id(self) -> resources_pb2.UserAppIDSet:
        """The ids as the proto every request carries."""
        return resources_pb2.UserAppIDSet(user_id=self.user_id, app_id=self.app_id)

    @property
    def target(self) -> str:
        """``USER/APP``, as ``clarifai-connect sync --app`` takes it."""
        return f"{self.user_id}/{self.app_id}"


@dataclass(frozen=True)
class DatasetRef:
    """A dataset created for one test, inside its own fresh app."""

    app: AppRef
    dataset_id: str


@pytest.fixture(scope="session")
def clarifai_server(tmp_path_factory) -> LocalServer:
    """A local Clarifai API server on a free loopback port, for the whole session; its key
    (``clarifai_pat``) belongs to the user ``TEST_USER`` and reaches that user's apps only;
    ``clarifai_server.key_for("other-user")`` gives a key of another user."""
    server = LocalServer(data_dir=tmp_path_factory.mktemp("clarifai-server"),
                         user=TEST_USER).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def clarifai_pat(clarifai_server) -> str:
    """The session server's key: a personal key of ``TEST_USER``."""
    return clarifai_server.keys[0]


@pytest.fixture(scope="session")
def clarifai_raw(clarifai_server) -> RawApi:
    """A raw gRPC stub to the session's server."""
    api = raw_api(clarifai_server)
    yield api
    api.channel.close()


@pytest.fixture
def clarifai_app(clarifai_raw) -> AppRef:
    """A fresh, empty app on the session's server, deleted after the test."""
    ref = AppRef(TEST_USER, f"app-{uuid.uuid4().hex[:12]}")
    resp = clarifai_raw.call("PostApps", service_pb2.PostAppsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=ref.user_id),
        apps=[resources_pb2.App(id=ref.app_id)]))
    assert resp.status.code == status_code_pb2.SUCCESS, resp.status
    yield ref
    clarifai_raw.call("DeleteApp", service_pb2.DeleteAppRequest(user_app_id=ref.user_app_id))


@pytest.fixture
def clarifai_dataset(clarifai_raw, clarifai_app) -> DatasetRef:
    """A fresh, empty dataset ``ds`` in a fresh app (deleted with the app after the test)."""
    ref = DatasetRef(clarifai_app, "ds")
    resp = clarifai_raw.call("PostDatasets", service_pb2.PostDatasetsRequest(
        user_app_id=clarifai_app.user_app_id, datasets=[resources_pb2.Dataset(id=ref.dataset_id)]))
    assert resp.status.code == status_code_pb2.SUCCESS, resp.status
    return ref


@dataclass(frozen=True)
class S3Endpoint:
    """A real S3 API (moto in server mode) on loopback, with throwaway credentials.

    ``storage_options`` are what fsspec/s3fs need to reach it explicitly; the fixture also
    sets the usual ``AWS_*`` environment variables, so ``s3://`` URLs work without options.
    """

    endpoint_url: str
    region: str
    access_key: str
    secret_key: str

    def __repr__(self) -> str:
        return f"S3Endpoint({self.endpoint_url!r})"

    @property
    def storage_options(self) -> dict:
        """fsspec storage options that point s3fs at this endpoint."""
        return {"endpoint_url": self.endpoint_url, "key": self.access_key,
                "secret": self.secret_key, "client_kwargs": {"region_name": self.region}}

    def filesystem(self):
        """A fresh s3fs filesystem on this endpoint (no fsspec instance cache)."""
        import s3fs

        return s3fs.S3FileSystem(skip_instance_cache=True, **self.storage_options)

    def bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh random name by default) and return its name."""
        import s3fs

        name = name or f"test-{uuid.uuid4().hex[:12]}"
        # No region here: s3fs would send it as a LocationConstraint, which us-east-1 rejects.
        s3fs.S3FileSystem(skip_instance_cache=True, endpoint_url=self.endpoint_url,
                          key=self.access_key, secret=self.secret_key).mkdir(name)
        return name


@pytest.fixture(scope="session")
def s3_endpoint() -> S3Endpoint:
    """A moto S3 server on a free loopback port for the session; sets ``AWS_ENDPOINT_URL``,
    ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_DEFAULT_REGION`` meanwhile."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = S3Endpoint(endpoint_url=f"http://{host}:{port}", region="us-east-1",
                          access_key="testing", secret_key="testing")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", endpoint.endpoint_url)
        patch.setenv("AWS_ACCESS_KEY_ID", endpoint.access_key)
        patch.setenv("AWS_SECRET_ACCESS_KEY", endpoint.secret_key)
        patch.setenv("AWS_DEFAULT_REGION", endpoint.region)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            patch.delenv(name, raising=False)
        yield endpoint
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint) -> str:
    """A fresh, empty bucket on the session's S3 endpoint."""
    return s3_endpoint.bucket()
