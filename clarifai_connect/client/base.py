"""BaseClient: one ``_call`` that authenticates, retries transient faults and raises typed errors.

Transient faults are gRPC UNAVAILABLE / RESOURCE_EXHAUSTED and the API's throttling statuses
(answered inside a successful gRPC call, as the API does). They are retried with capped
exponential backoff and full jitter until ``RetryPolicy.deadline`` seconds have passed.
Any other failure status raises :class:`~clarifai_connect.errors.ApiError` at once (an
:class:`~clarifai_connect.errors.AuthError` when the credentials are refused).

Failing fast when the API is down: an endpoint that never answered is given
``connect_deadline`` seconds, and once every call to an endpoint has failed for
``give_up_after`` seconds (a circuit breaker shared by all calls to it) each call raises
:class:`~clarifai_connect.errors.ApiUnreachableError` at once instead of retrying on its own.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import grpc
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2
from google.protobuf import message_factory

from ..errors import (
    ApiClientError,
    ApiError,
    ApiUnreachableError,
    AuthError,
    ClarifaiConnectError,
    redact,
)
from ..server.protos import MODULE_SERVICE
from .auth import ClientAuth

log = logging.getLogger("clarifai_connect.client")

_SERVICE = service_pb2.DESCRIPTOR.services_by_name["V2"]
SUCCESS = (status_code_pb2.SUCCESS,)


@dataclass(frozen=True)
class Fault:
    """What a failed call becomes: the error class raised, and whether it is retried first
    (a transient fault, raised only once the retry deadline has passed)."""

    error: type[ClarifaiConnectError]
    transient: bool = False


# The one table from failure codes to errors, as httpx maps transport exceptions: gRPC codes
# (the call did not complete) and the Clarifai statuses the API answers inside a completed
# call. Codes not listed take the defaults below.
_TRANSIENT_CLIENT = Fault(ApiClientError, transient=True)
_TRANSIENT_API = Fault(ApiError, transient=True)
FAULTS: dict[grpc.StatusCode | int, Fault] = {
    grpc.StatusCode.UNAVAILABLE: _TRANSIENT_CLIENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED: _TRANSIENT_CLIENT,
    # The client never cancels a call: CANCELLED is a server going away mid-call.
    grpc.StatusCode.CANCELLED: _TRANSIENT_CLIENT,
    status_code_pb2.CONN_THROTTLED: _TRANSIENT_API,
    status_code_pb2.CONN_EXCEED_HOURLY_LIMIT: _TRANSIENT_API,
    status_code_pb2.CONN_EXCEEDS_LIMITS: _TRANSIENT_API,
    status_code_pb2.MODEL_BUSY_PLEASE_RETRY: _TRANSIENT_API,
    status_code_pb2.RPC_SERVER_UNAVAILABLE: _TRANSIENT_API,
    # The credentials are refused: a distinct error (and exit code), never retried.
    **dict.fromkeys((status_code_pb2.CONN_ACCOUNT_ISSUES, status_code_pb2.CONN_TOKEN_INVALID,
                     status_code_pb2.CONN_CREDENTIALS_INVALID,
                     status_code_pb2.CONN_INSUFFICIENT_SCOPES, status_code_pb2.CONN_KEY_INVALID,
                     status_code_pb2.CONN_KEY_NOT_FOUND), Fault(AuthError)),
}
AUTH_GRPC_CODES = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
GRPC_DEFAULT = Fault(ApiClientError)  # any other gRPC code: the API could not be reached
STATUS_DEFAULT = Fault(ApiError)  # any other failure status: the API said no
THROTTLE_CODES = frozenset(c for c, f in FAULTS.items() if isinstance(c, int) and f.transient)
RETRY_GRPC_CODES = frozenset(c for c, f in FAULTS.items()
                             if isinstance(c, grpc.StatusCode) and f.transient)


def fault_of(code: grpc.StatusCode | int | None) -> Fault:
    """The table's entry for a gRPC code or a Clarifai status code."""
    fault = FAULTS.get(code) if code is not None else None
    if fault is not None:
        return fault
    return STATUS_DEFAULT if isinstance(code, int) else GRPC_DEFAULT


@dataclass(frozen=True)
class RetryPolicy:
    """How transient faults are retried: backoff ``initial``·``multiplier``ⁿ capped at
    ``cap`` seconds, with full jitter, for at most ``deadline`` seconds overall."""

    initial: float = 0.2
    multiplier: float = 2.0
    cap: float = 5.0
    deadline: float = 60.0
    call_timeout: float | None = 600.0  # per attempt; None waits forever
    connect_deadline: float = 5.0  # retrying an endpoint that never answered
    give_up_after: float = 60.0  # every call to the endpoint failed for this long: stop

    def giving_up_after(self, seconds: float) -> RetryPolicy:
        """This policy, its circuit breaker opening once every call has failed for
        ``seconds`` (the overall deadline at least as long)."""
        return replace(self, give_up_after=seconds, deadline=max(self.deadline, seconds))

    def delays(self) -> Iterable[float]:
        """The (jittered) sleeps between attempts, forever; the caller enforces the deadline."""
        ceiling = self.initial
        while True:
            yield random.uniform(0, ceiling)
            ceiling = min(self.cap, ceiling * self.multiplier)


DEFAULT_RETRY = RetryPolicy()
# Keyed by the channel object itself (an id() could be reused by a later channel once this
# one is collected); an entry goes with its channel.
_methods: weakref.WeakKeyDictionary[grpc.Channel, dict[str, Callable]] = \
    weakref.WeakKeyDictionary()
_methods_lock = threading.Lock()


class EndpointHealth:
    """Whether an endpoint ever answered, and since when every call to it has failed."""

    def __init__(self) -> None:
        self.answered = False
        self.failing_since: float | None = None

    def success(self) -> None:
        """A call got an answer (any status but a transient fault)."""
        self.answered = True
        self.failing_since = None

    def failure(self, now: float) -> float:
        """A call failed transiently; returns for how long every call has been failing."""
        if self.failing_since is None:
            self.failing_since = now
        return now - self.failing_since


_health: weakref.WeakKeyDictionary[grpc.Channel, EndpointHealth] = \
    weakref.WeakKeyDictionary()


def endpoint_health(channel: grpc.Channel) -> EndpointHealth:
    """The shared health of the endpoint behind ``channel`` (one per shared channel)."""
    with _methods_lock:
        return _health.setdefault(channel, EndpointHealth())


def _method(channel: grpc.Channel, name: str) -> Callable:
    """A unary callable for V2 method ``name`` on ``channel``, typed by the method's protos."""
    with _methods_lock:
        cached = _methods.setdefault(channel, {})
    fn = cached.get(name)
    if fn is None:
        # The module RPCs left clarifai-grpc; the project's own protos call them on V2's path.
        desc = _SERVICE.methods_by_name.get(name) or MODULE_SERVICE.methods_by_name.get(name)
        if desc is None:
            raise ApiClientError(f"the Clarifai API has no method {name}")
        resp_cls = message_factory.GetMessageClass(desc.output_type)
        fn = channel.unary_unary(f"/{_SERVICE.full_name}/{name}",
                                 request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=resp_cls.FromString)
        cached[name] = fn
    return fn


def raise_for_status(method: str, response: Any, ok: Iterable[int] = SUCCESS) -> Any:
    """Return ``response`` when its status code is in ``ok``, else raise ApiError."""
    status = response.status
    if status.code in ok:
        return response
    error = fault_of(status.code).error
    raise error(method, status.code, status.description, status.details, status.req_id,
                response=response)


def resolve_auth(auth: ClientAuth | None, user_id: str | None = None, app_id: str | None = None,
                 base_url: str | None = None, pat: str | None = None, token: str | None = None,
                 root_certificates_path: str | None = None) -> ClientAuth:
    """The connection of a new client object: ``auth`` (from a parent object) with the given
    ids, or settings resolved from the arguments and the environment."""
    if auth is not None:
        return auth.with_ids(user_id or None, app_id or None)
    return ClientAuth.resolve(user_id=user_id, app_id=app_id, base_url=base_url, pat=pat,
                              token=token, root_certificates_path=root_certificates_path)


class BaseClient:
    """Holds a :class:`ClientAuth` and calls the API through it.

    Subclasses get ``user_id``, ``app_id``, ``auth`` (the resolved settings), ``user_app_id``
    (the proto every request carries) and :meth:`_call`. Fields of the resource's proto
    (``_info``: an App, a Dataset …) read as attributes, as in the official SDK.
    """

    retry_policy: RetryPolicy = DEFAULT_RETRY
    _info: Any = None

    def _init_client(self, auth: ClientAuth) -> None:
        self.auth = auth
        self.user_app_id = resources_pb2.UserAppIDSet(
            user_id=auth.user_id, app_id=auth.app_id)

    def __getattr__(self, name: str) -> Any:
        info = self.__dict__.get("_info")
        if not name.startswith("_") and info is not None and \
                name in info.DESCRIPTOR.fields_by_name:
            return getattr(info, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def user_id(self) -> str:
        """The user the client acts for."""
        return self.auth.user_id

    @property
    def app_id(self) -> str:
        """The app the client acts in ('' for user-level clients)."""
        return self.auth.app_id

    @property
    def base(self) -> str:
        """The base URL of the API."""
        return self.auth.base_url

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata that authenticates a call (holds the credential: never log it)."""
        return self.auth.metadata

    def _call(self, method: str, request: Any, ok: Iterable[int] = SUCCESS) -> Any:
        """Call V2 ``method`` with ``request``; return the response whose status is in ``ok``.

        Retries transient faults within the retry policy's deadline. Raises ApiError on any
        other status (the response is attached as ``error.response``, per-item statuses
        included) and ApiClientError when the API cannot be reached.
        """
        ok = tuple(ok)
        policy = self.retry_policy
        channel = self.auth.channel()
        fn = _method(channel, method)
        health = endpoint_health(channel)
        started = time.monotonic()
        delays = iter(policy.delays())
        attempt = 0
        while True:
            attempt += 1
            try:
                response = fn(request, metadata=self.auth.metadata, timeout=policy.call_timeout)
            except grpc.RpcError as err:
                code = err.code() if hasattr(err, "code") else None
                detail = redact(err.details() if hasattr(err, "details") else str(err))
                kind = fault_of(code)
                if code in AUTH_GRPC_CODES:
                    health.success()
                    raise AuthError(method, 0, f"gRPC {code.name}: {detail}") from None
                if not kind.transient:
                    raise kind.error(
                        f"{method} failed: gRPC {getattr(code, 'name', code)}: {detail}") from err
                fault = f"gRPC {code.name}: {detail}"
                response = None
            else:
                if not fault_of(response.status.code).transient:
                    health.success()
                    return raise_for_status(method, response, ok)
                fault = redact(f"status {response.status.code} {response.status.description}")
            now = time.monotonic()
            failing = health.failure(now)
            if response is None and failing >= policy.give_up_after:
                raise ApiUnreachableError(
                    f"the API at {self.base} has not answered for {failing:.0f}s "
                    f"({method}: {fault})")
            if response is None and not health.answered and \
                    now - started >= policy.connect_deadline:
                raise ApiUnreachableError(f"the API at {self.base} is not answering "
                                          f"({method} failed after {attempt} attempts: {fault})")
            delay = next(delays)
            if now - started + delay > policy.deadline:
                log.info("%s: giving up after %d attempts (%s)", method, attempt, fault)
                if response is not None:
                    return raise_for_status(method, response, ok)
                raise ApiUnreachableError(f"{method} failed after {attempt} attempts: {fault}")
            log.debug("%s: transient fault (%s), retry %d in %.2fs", method, fault, attempt,
                      delay)
            time.sleep(delay)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(user_id={self.user_id!r}, app_id={self.app_id!r}, " \
               f"base_url={self.base!r})"
