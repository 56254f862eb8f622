"""Pytest fixtures for testing against a real local Clarifai server (entry point ``pytest11``).

Connector authors get these by installing clarifai-connect: a running local server on
loopback, a raw gRPC stub to it, and a fresh app per test.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import grpc
import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2

from .server import LocalServer

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


@pytest.fixture(scope="session")
def clarifai_server(tmp_path_factory) -> LocalServer:
    """A local Clarifai API server on a free loopback port, for the whole session."""
    server = LocalServer(data_dir=tmp_path_factory.mktemp("clarifai-server")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def clarifai_pat(clarifai_server) -> str:
    """A key the session's server accepts."""
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
