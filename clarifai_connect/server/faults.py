"""Latency and transient-fault injection, for reliability tests of the client and engine."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

import grpc
from clarifai_grpc.grpc.api.status import status_code_pb2


@dataclass
class FaultInjector:
    """Before a call: sleep ``latency`` seconds, then with probability ``rate`` abort it.

    ``kind`` is ``"unavailable"`` (the gRPC status UNAVAILABLE) or ``"throttle"`` (a response
    whose status is CONN_THROTTLED, as the API answers a rate limit). ``methods`` limits injection to some RPCs
    (empty: all). ``budget`` caps the number of faults (None: unlimited). ``after`` lets
    that many calls (of ``methods``) through first, untouched: a fault from the n-th call on.
    """

    latency: float = 0.0
    rate: float = 0.0
    kind: str = "unavailable"
    methods: frozenset[str] = frozenset()
    seed: int | None = None
    budget: int | None = None
    after: int = 0
    injected: int = 0
    calls: int = 0  # calls of ``methods`` seen (since the last configure)
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _wake: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._rng.seed(self.seed)
        if self.kind not in ("unavailable", "throttle"):
            raise ValueError("fault kind must be 'unavailable' or 'throttle'")

    def configure(self, **settings) -> None:
        """Change settings on a running server (tests flip faults on and off); calls
        sleeping out the old latency wake up."""
        with self._lock:
            self._wake.set()
            self._wake = threading.Event()
            for key, value in settings.items():
                if key == "methods":
                    value = frozenset(value or ())
                setattr(self, key, value)
            if settings.get("seed") is not None:
                self._rng.seed(self.seed)
            self.injected = self.calls = 0

    def before_call(self, method: str, context: grpc.ServicerContext) -> tuple[int, str] | None:
        """Delay, then maybe fail the call: UNAVAILABLE aborts it (grpc raises), a throttle
        returns the (status code, description) the call must answer with."""
        if self.methods and method not in self.methods:
            return None
        with self._lock:
            self.calls += 1
            if self.calls <= self.after:
                return None
            latency, wake = self.latency, self._wake
        if latency:
            wake.wait(latency)
        if not self.rate:
            return None
        with self._lock:
            hit = self._rng.random() < self.rate and (
                self.budget is None or self.injected < self.budget)
            if hit:
                self.injected += 1
        if not hit:
            return None
        if self.kind == "throttle":
            return status_code_pb2.CONN_THROTTLED, "Making too many requests (injected fault)"
        context.abort(grpc.StatusCode.UNAVAILABLE, "injected fault: unavailable")
        return None  # not reached: abort raises
