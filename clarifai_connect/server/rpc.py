"""The RPC registry: resource modules register handlers by method name; the registry turns
them into one gRPC generic handler for ``clarifai.api.V2``.

Every call goes through the same wrapper: authentication and authorization (the key's user
or app must own the request's ``user_app_id``), fault injection (tests only),
and conversion of unexpected exceptions into a FAILURE status, so that a handler bug never
surfaces as a transport error the SDK would retry for a minute.
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import grpc
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2, status_pb2
from google.protobuf import message_factory

from .auth import Identity
from .blobs import BlobStore
from .protos import MODULE_SERVICE
from .store import Store

if TYPE_CHECKING:
    from .ingest_activity import IngestActivity
    from .input_pages import InputPages
    from .ml.embeddings import EmbeddingService
    from .ml.search_index import SearchIndex

SERVICE = "clarifai.api.V2"
_DESCRIPTOR = service_pb2.DESCRIPTOR.services_by_name["V2"]
log = logging.getLogger("clarifai_connect.server")

Handler = Callable[["CallContext", Any], Any]
_HANDLERS: dict[str, Handler] = {}


class RpcFailure(Exception):
    """Raised by a handler to answer the whole call with an application status."""

    def __init__(self, code: int, description: str, details: str = "") -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.details = details


def rpc(name: str) -> Callable[[Handler], Handler]:
    """Register ``fn(ctx, request) -> response`` as the handler of the V2 method ``name``
    (a method of clarifai-grpc's V2, or a module RPC of ``protos/modules.proto``)."""
    _method_descriptor(name)

    def decorate(fn: Handler) -> Handler:
        _HANDLERS[name] = fn
        return fn

    return decorate


def registered() -> dict[str, Handler]:
    """The handlers registered so far, by method name."""
    return dict(_HANDLERS)


def _method_descriptor(name: str):
    # The module RPCs left clarifai-grpc; they are served on the same V2 path all the same.
    method = _DESCRIPTOR.methods_by_name.get(name) or MODULE_SERVICE.methods_by_name.get(name)
    if method is None:
        raise ValueError(f"V2 has no method {name}")
    return method


def response_class(method: str) -> type:
    """The response message class of a V2 method."""
    return message_factory.GetMessageClass(_method_descriptor(method).output_type)


def request_class(method: str) -> type:
    """The request message class of a V2 method."""
    return message_factory.GetMessageClass(_method_descriptor(method).input_type)


def status(code: int = status_code_pb2.SUCCESS, description: str = "", details: str = "",
           req_id: str = "") -> status_pb2.Status:
    """Build a Status; the description defaults to the code's name, as the API does."""
    if not description:
        description = "Ok" if code == status_code_pb2.SUCCESS else _code_name(code)
    return status_pb2.Status(code=code, description=description, details=details, req_id=req_id)


def _code_name(code: int) -> str:
    try:
        return status_code_pb2.StatusCode.Name(code).replace("_", " ").capitalize()
    except ValueError:
        return "Failure"


class PreSerialized:
    """A response whose bulk is serialized already: ``head``, a response message holding
    the status (and any other fields), then ``tail``, more serialized fields of the same
    message (concatenated serializations parse as one message). The call wrapper sets the
    status on ``head`` as on any response; gRPC sends ``head``'s bytes and then ``tail``."""

    __slots__ = ("head", "tail")

    def __init__(self, head: Any, tail: bytes) -> None:
        self.head = head
        self.tail = tail

    @property
    def status(self) -> status_pb2.Status:
        """The response's status (a live part of ``head``)."""
        return self.head.status

    def HasField(self, name: str) -> bool:  # noqa: N802 (the protobuf message API)
        """Whether ``head`` has field ``name`` set."""
        return self.head.HasField(name)

    def SerializeToString(self) -> bytes:  # noqa: N802
        """The response's wire bytes."""
        return self.head.SerializeToString() + self.tail


class ServerState(Protocol):
    """What handlers use of the running server (:class:`~.runtime.LocalServer`)."""

    store: Store  # the SQLite database
    blobs: BlobStore  # large media bytes, by digest
    background: Executor  # URL downloads and other work after the response
    data_dir: Path
    exports_dir: Path  # dataset-version export archives, served over HTTP
    download_timeout: float  # seconds per URL download
    embeddings: EmbeddingService  # vectors of the inputs, the embedders (ml/embeddings.py)
    search_index: SearchIndex  # the indexed facts search filters on (ml/search_index.py)
    ingest: IngestActivity  # when PostInputs last ran: background work gives way to it
    input_pages: InputPages  # ListInputs' remembered page boundaries (keyset paging)

    @property
    def media_url(self) -> str:
        """Where the hosted-media HTTP server answers (the prefix of hosted URLs)."""
        ...


@dataclass
class CallContext:
    """What a handler knows about the call besides its request."""

    method: str
    server: ServerState
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    grpc_context: Any = None
    identity: Identity = field(default_factory=lambda: Identity(None))  # whose key called


def authorize(identity: Identity, method: str, request: Any) -> tuple[int, str, str] | None:
    """None when ``identity`` may make this call, else the refusal (code, description,
    details). The resources of a request are those of its ``user_app_id``; ids left empty
    are the key's own (an app-scoped key names its app, as on the real API)."""
    if "user_app_id" not in request.DESCRIPTOR.fields_by_name:
        return None
    ids = request.user_app_id
    if identity.user_id is not None and not ids.user_id:
        ids.user_id = identity.user_id
    if identity.app_id is not None and not ids.app_id and method not in ("PostApps",
                                                                        "ListApps"):
        ids.app_id = identity.app_id
    return identity.refusal(method, ids.user_id, ids.app_id)


_CURRENT: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar(
    "clarifai_connect_call", default=None)


def current_call() -> CallContext | None:
    """The call being served on this thread (None outside an RPC): code deep below a
    handler (a runner-served prediction) reads the caller's deadline from it."""
    return _CURRENT.get()


def build_handler(server: Any) -> grpc.GenericRpcHandler:
    """One generic handler serving every registered method of V2."""
    handlers = {}
    for name, fn in _HANDLERS.items():
        method = _method_descriptor(name)
        if method.client_streaming and method.server_streaming:
            make, wrapped = grpc.stream_stream_rpc_method_handler, _wrap_stream(server, name, fn)
        else:
            make, wrapped = grpc.unary_unary_rpc_method_handler, _wrap(server, name, fn)
        handlers[name] = make(wrapped, request_deserializer=request_class(name).FromString,
                              response_serializer=lambda msg: msg.SerializeToString())
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


def _identify(server: Any, ctx: CallContext, context: grpc.ServicerContext) -> Any:
    """Set ``ctx.identity`` from the call's key; the refusal status when it has none."""
    identity = server.auth.check(context.invocation_metadata())
    if isinstance(identity, tuple):
        return status(identity[0], identity[1], req_id=ctx.request_id)
    ctx.identity = identity
    return None


def _wrap_stream(server: Any, name: str, fn: Handler) -> Callable[[Any, grpc.ServicerContext], Any]:
    """A bidirectional stream: ``fn(ctx, requests)`` yields the responses. A refused key or
    a failure ends the stream with one response carrying the status."""
    resp_cls = response_class(name)

    def call(requests: Any, context: grpc.ServicerContext) -> Any:
        ctx = CallContext(method=name, server=server, grpc_context=context)
        refused = _identify(server, ctx, context)
        if refused is not None:
            yield resp_cls(status=refused)
            return

        def authorized() -> Any:
            for request in requests:  # each message of the stream names its resources
                refusal = authorize(ctx.identity, name, request)
                if refusal is not None:
                    raise RpcFailure(*refusal)
                yield request

        try:
            yield from fn(ctx, authorized())
        except RpcFailure as failure:
            yield resp_cls(status=status(failure.code, failure.description, failure.details,
                                         req_id=ctx.request_id))
        except Exception as exc:  # a handler bug must not look like a transport fault
            log.exception("%s failed", name)
            yield resp_cls(status=status(status_code_pb2.FAILURE, "Internal error",
                                         f"{type(exc).__name__}: {exc}", req_id=ctx.request_id))

    call.__name__ = name
    return call


def _wrap(server: Any, name: str, fn: Handler) -> Callable[[Any, grpc.ServicerContext], Any]:
    resp_cls = response_class(name)

    def call(request: Any, context: grpc.ServicerContext) -> Any:
        ctx = CallContext(method=name, server=server, grpc_context=context)
        refused = _identify(server, ctx, context)
        if refused is not None:
            return resp_cls(status=refused)
        refusal = authorize(ctx.identity, name, request)
        if refusal is not None:
            return resp_cls(status=status(*refusal, req_id=ctx.request_id))
        fault = server.faults.before_call(name, context)
        if fault is not None:
            return resp_cls(status=status(fault[0], fault[1], req_id=ctx.request_id))
        token = _CURRENT.set(ctx)
        try:
            response = fn(ctx, request)
        except RpcFailure as failure:
            return resp_cls(status=status(failure.code, failure.description, failure.details,
                                          req_id=ctx.request_id))
        except Exception as exc:  # a handler bug must not look like a transport fault
            log.exception("%s failed", name)
            return resp_cls(status=status(status_code_pb2.FAILURE, "Internal error",
                                          f"{type(exc).__name__}: {exc}", req_id=ctx.request_id))
        finally:
            _CURRENT.reset(token)
        if not response.HasField("status"):
            response.status.CopyFrom(status(req_id=ctx.request_id))
        elif not response.status.req_id:
            response.status.req_id = ctx.request_id
        return response

    call.__name__ = name
    return call
