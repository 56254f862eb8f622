"""BaseClient: one ``_call`` that authenticates, retries transient faults and raises typed errors.

Transient faults are gRPC UNAVAILABLE / RESOURCE_EXHAUSTED and the API's throttling statuses
(answered inside a successful gRPC call, as the API does). They are retried with capped
exponential backoff and full jitter until ``RetryPolicy.deadline`` seconds have passed.
Any other failure status raises :class:`~clarifai_connect.errors.ApiError` at once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2
from google.protobuf import message_factory

from ..errors import ApiClientError, ApiError, redact
from .auth import ClientAuth

log = logging.getLogger("clarifai_connect.client")

_SERVICE = service_pb2.DESCRIPTOR.services_by_name["V2"]
THROTTLE_CODES = frozenset({
    status_code_pb2.CONN_THROTTLED,
    status_code_pb2.CONN_EXCEED_HOURLY_LIMIT,
    status_code_pb2.CONN_EXCEEDS_LIMITS,
    status_code_pb2.MODEL_BUSY_PLEASE_RETRY,
    status_code_pb2.RPC_SERVER_UNAVAILABLE,
})
RETRY_GRPC_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
SUCCESS = (status_code_pb2.SUCCESS,)


@dataclass(frozen=True)
class RetryPolicy:
    """How transient faults are retried: backoff ``initial``·``multiplier``ⁿ capped at
    ``cap`` seconds, with full jitter, for at most ``deadline`` seconds overall."""

    initial: float = 0.2
    multiplier: float = 2.0
    cap: float = 5.0
    deadline: float = 60.0
    call_timeout: float | None = 600.0  # per attempt; None waits forever

    def delays(self) -> Iterable[float]:
        """The (jittered) sleeps between attempts, forever; the caller enforces the deadline."""
        ceiling = self.initial
        while True:
            yield random.uniform(0, ceiling)
            ceiling = min(self.cap, ceiling * self.multiplier)


DEFAULT_RETRY = RetryPolicy()
_methods: dict[tuple[int, str], Callable] = {}
_methods_lock = threading.Lock()


def _method(channel: grpc.Channel, name: str) -> Callable:
    """A unary callable for V2 method ``name`` on ``channel``, typed by the method's protos."""
    key = (id(channel), name)
    fn = _methods.get(key)
    if fn is None:
        desc = _SERVICE.methods_by_name.get(name)
        if desc is None:
            raise ApiClientError(f"the Clarifai API has no method {name}")
        resp_cls = message_factory.GetMessageClass(desc.output_type)
        fn = channel.unary_unary(f"/{_SERVICE.full_name}/{name}",
                                 request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=resp_cls.FromString)
        with _methods_lock:
            _methods[key] = fn
    return fn


def raise_for_status(method: str, response: Any, ok: Iterable[int] = SUCCESS) -> Any:
    """Return ``response`` when its status code is in ``ok``, else raise ApiError."""
    status = response.status
    if status.code in ok:
        return response
    raise ApiError(method, status.code, status.description, status.details, status.req_id,
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
        fn = _method(self.auth.channel(), method)
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
                if code not in RETRY_GRPC_CODES:
                    raise ApiClientError(
                        f"{method} failed: gRPC {getattr(code, 'name', code)}: {detail}") from None
                fault = f"gRPC {code.name}: {detail}"
                response = None
            else:
                if response.status.code not in THROTTLE_CODES:
                    return raise_for_status(method, response, ok)
                fault = redact(f"status {response.status.code} {response.status.description}")
            delay = next(delays)
            if time.monotonic() - started + delay > policy.deadline:
                log.warning("%s: giving up after %d attempts (%s)", method, attempt, fault)
                if response is not None:
                    return raise_for_status(method, response, ok)
                raise ApiClientError(f"{method} failed after {attempt} attempts: {fault}")
            log.debug("%s: transient fault (%s), retry %d in %.2fs", method, fault, attempt,
                      delay)
            time.sleep(delay)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(user_id={self.user_id!r}, app_id={self.app_id!r}, " \
               f"base_url={self.base!r})"
