"""The runner item queue: predictions for a runner-served model wait here for a runner.

A prediction (PostModelOutputs, or a workflow node) on a model that one of its owner's
runners serves becomes a *runner item*: the caller's ``PostModelOutputsRequest`` queued for
every runner that serves the model. A runner claims items (ListRunnerItems, or the
ProcessRunnerItems stream), computes, and posts a ``MultiOutputResponse`` back
(PostRunnerItemOutputs); the waiting caller gets its outputs. Each item is handed to one
runner exactly once.

The caller waits until its gRPC deadline (less a margin to answer in), at most
``RUNNER_TIMEOUT`` s. When no runner that serves the model is alive — none polled in the
last ``LIVENESS`` s and none holds a stream open — the call ends after ``LIVENESS`` s at the
latest with **MODEL_NOT_DEPLOYED** ("no runner is serving …"); an item claimed but not
answered in time ends with **RUNNER_PROCESSING_FAILED**. The queue lives in memory: items
are as short-lived as the calls waiting on them.

Each waiting caller holds one of the server's worker threads (``LocalServer(workers=…)``,
16 by default), as do the runners' polls: size ``workers`` above the callers plus polls you
expect at once, or the runners cannot get through to answer.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from ..annotations import new_id
from ..rpc import RpcFailure

LIVENESS = 5.0  # seconds since its last poll that a runner counts as alive
RUNNER_TIMEOUT = 120.0  # the longest a caller without a deadline waits
ANSWER_MARGIN = 1.0  # seconds kept of the caller's deadline to answer in (at most a fifth)
PENDING, CLAIMED, DONE, ABANDONED = "pending", "claimed", "done", "abandoned"


@dataclass(eq=False)
class QueuedItem:
    """One prediction waiting for a runner."""

    owner: str  # the user whose runners may take it
    runners: frozenset[str]  # the ids of the runners that serve the model
    request: service_pb2.PostModelOutputsRequest
    id: str = field(default_factory=new_id)
    state: str = PENDING
    claimed_by: str = ""
    response: service_pb2.MultiOutputResponse | None = None
    submitted: float = field(default_factory=time.monotonic)

    def proto(self) -> service_pb2.RunnerItem:
        """The item as a runner receives it."""
        item = service_pb2.RunnerItem(id=self.id, description="PostModelOutputs",
                                        post_model_outputs_request=self.request)
        item.processing_info.runner_method_type = resources_pb2.UNARY_UNARY
        item.processing_info.processing_id = self.id
        return item


class RunnerQueue:
    """The items of one server, and which runners are alive."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: list[QueuedItem] = []
        self._claimed: dict[str, QueuedItem] = {}
        self._seen: dict[tuple[str, str], float] = {}
        self._streams: Counter[tuple[str, str]] = Counter()

    # -- runners ---------------------------------------------------------------------------

    def seen(self, owner: str, runner_id: str) -> None:
        """Note that a runner asked for work just now."""
        with self._cond:
            self._seen[(owner, runner_id)] = time.monotonic()
            self._cond.notify_all()

    def stream(self, owner: str, runner_id: str, opened: bool) -> None:
        """Count a ProcessRunnerItems stream opening or closing (an open stream is alive)."""
        with self._cond:
            self._streams[(owner, runner_id)] += 1 if opened else -1
            self._seen[(owner, runner_id)] = time.monotonic()
            self._cond.notify_all()

    def alive(self, owner: str, runner_ids: frozenset[str]) -> bool:
        """Whether any of the runners polled lately or holds a stream open."""
        with self._cond:
            return self._alive(owner, runner_ids, time.monotonic())

    def _alive(self, owner: str, runner_ids: frozenset[str], clock: float) -> bool:
        return any(self._streams[(owner, r)] > 0 or
                   clock - self._seen.get((owner, r), -1e9) <= LIVENESS for r in runner_ids)

    # -- callers ---------------------------------------------------------------------------

    def run(self, item: QueuedItem, timeout: float,
            active: Callable[[], bool] = lambda: True) -> service_pb2.MultiOutputResponse:
        """Queue ``item`` and wait for its answer (see the module doc for the failures);
        ``active`` says whether the caller still waits (a cancelled call gives up)."""
        deadline = item.submitted + timeout
        with self._cond:
            self._pending.append(item)
            self._cond.notify_all()
            while item.state != DONE:
                if not active():
                    self._give_up(item)
                    raise RpcFailure(codes.RUNNER_ITEM_CANCELLED, "Caller went away",
                                     "the call was cancelled before a runner answered")
                clock = time.monotonic()
                idle = item.state == PENDING and not self._alive(item.owner, item.runners, clock)
                if clock >= deadline or (idle and clock - item.submitted >= LIVENESS):
                    self._give_up(item)
                    if item.claimed_by:
                        raise RpcFailure(codes.RUNNER_PROCESSING_FAILED, "Runner did not answer",
                                         f"runner '{item.claimed_by}' took the request but did "
                                         f"not answer within {timeout:.1f}s")
                    if not idle:
                        raise RpcFailure(codes.RUNNER_PROCESSING_FAILED, "Runners are busy",
                                         f"no runner took the request within {timeout:.1f}s")
                    raise RpcFailure(codes.MODEL_NOT_DEPLOYED, "No runner is serving the model",
                                     "no runner of this model is alive (runners: "
                                     f"{', '.join(sorted(item.runners))}): start one, e.g. "
                                     "Runner(...).start()")
                self._cond.wait(min(0.5, max(0.0, deadline - clock)))
            return item.response

    def _give_up(self, item: QueuedItem) -> None:
        if item.state == PENDING:
            self._pending.remove(item)
        self._claimed.pop(item.id, None)
        item.state = ABANDONED  # a late answer is refused

    # -- runners' side ---------------------------------------------------------------------

    def claim(self, owner: str, runner_id: str, wait: float) -> QueuedItem | None:
        """The oldest pending item this runner may take (waiting up to ``wait`` s), claimed."""
        until = time.monotonic() + wait
        with self._cond:
            self._seen[(owner, runner_id)] = time.monotonic()
            while True:
                for item in self._pending:
                    if item.owner == owner and runner_id in item.runners:
                        self._pending.remove(item)
                        item.state, item.claimed_by = CLAIMED, runner_id
                        self._claimed[item.id] = item
                        return item
                remaining = until - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def answer(self, owner: str, runner_id: str, item_id: str,
               response: service_pb2.MultiOutputResponse) -> None:
        """Hand a runner's response to the waiting caller; fails the call when the item is
        unknown, another runner's, or was given up on."""
        with self._cond:
            self._seen[(owner, runner_id)] = time.monotonic()
            item = self._claimed.get(item_id)
            if item is None or item.owner != owner:
                raise RpcFailure(codes.RUNNER_ITEM_CANCELLED, "Runner item is not waiting",
                                 f"runner item '{item_id}' is not waiting for an answer (it "
                                 "was answered, or its caller gave up)")
            if item.claimed_by != runner_id:
                raise RpcFailure(codes.RUNNER_INVALID_REQUEST, "Runner item of another runner",
                                 f"runner item '{item_id}' was given to runner "
                                 f"'{item.claimed_by}', not '{runner_id}'")
            del self._claimed[item_id]
            item.response, item.state = response, DONE
            self._cond.notify_all()


_QUEUES: weakref.WeakKeyDictionary[Any, RunnerQueue] = weakref.WeakKeyDictionary()
_QUEUES_LOCK = threading.Lock()


def queue_of(server: Any) -> RunnerQueue:
    """The runner queue of a running server."""
    with _QUEUES_LOCK:
        queue = _QUEUES.get(server)
        if queue is None:
            queue = _QUEUES[server] = RunnerQueue()
        return queue
