"""Runners: PostRunners, GetRunner, ListRunners, DeleteRunners, and the work they do:
ListRunnerItems, PostRunnerItemOutputs, the ProcessRunnerItems stream — plus the
interceptor that turns a prediction on a runner-served model into a runner item.

A runner belongs to a user (optionally inside one of their nodepools). It serves a model
when its ``worker.model`` names it (and, if given, the version), or — for runners made the
seed's way, with labels only — when one of its ``labels`` is the model's id or
``<model id>/<version id>``. Items, liveness and deadlines: :mod:`.runner_queue`.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from clarifai_grpc.grpc.api.status import status_pb2

from ..annotations import new_id
from ..common import fresh_copy, invalid, page_window, timestamp, with_stored_data
from ..rpc import CallContext, RpcFailure, current_call, rpc, status
from ..store import now
from . import predict
from .compute import load_nodepool, owner
from .runner_queue import ANSWER_MARGIN, RUNNER_TIMEOUT, QueuedItem, queue_of

log = logging.getLogger("clarifai_connect.server")
POLL_WAIT = 0.5  # how long ListRunnerItems waits for work before RUNNER_NEEDS_RETRY
STREAM_IDLE = 15.0  # the official runner gives up on a stream silent for ~20 s
CONTROL_PREFIX = "control-"


def runner_missing(runner_id: str) -> RpcFailure:
    """The failure for an unknown runner id."""
    return RpcFailure(codes.RUNNER_DOES_NOT_EXIST, "Runner does not exist",
                      f"runner '{runner_id}' does not exist")


def load_runner(db: sqlite3.Connection, user_id: str, runner_id: str) -> resources_pb2.Runner:
    """The user's runner; fails the call naming it when missing."""
    row = db.execute("SELECT proto FROM runners WHERE user_id=? AND id=?",
                     (user_id, runner_id)).fetchone()
    if row is None:
        raise runner_missing(runner_id)
    return resources_pb2.Runner.FromString(row[0])


def serves(runner: resources_pb2.Runner, model: resources_pb2.Model) -> bool:
    """Whether ``runner`` serves ``model`` at its ``model_version`` (see the module doc)."""
    version = model.model_version.id
    if runner.HasField("worker") and runner.worker.HasField("model"):
        wanted = runner.worker.model
        return wanted.id == model.id and wanted.app_id in ("", model.app_id) and \
            wanted.user_id in ("", model.user_id) and \
            wanted.model_version.id in ("", version)
    return model.id in runner.labels or f"{model.id}/{version}" in runner.labels


@rpc("PostRunners")
def post_runners(ctx: CallContext, req: service_pb2.PostRunnersRequest):
    user_id = owner(req)
    if not req.runners:
        raise invalid("no runners given")
    created = []
    with ctx.server.store.write() as db:
        nodepool = None
        if req.nodepool_id:
            nodepool = load_nodepool(db, user_id, req.compute_cluster_id, req.nodepool_id)
        for given in req.runners:
            runner = fresh_copy(db, "runners", {"user_id": user_id}, given, "runner")
            stamp = now()
            runner.created_at.CopyFrom(timestamp(stamp))
            runner.modified_at.CopyFrom(timestamp(stamp))
            if nodepool is not None:
                runner.nodepool.CopyFrom(nodepool)
            if runner.worker.HasField("model") and not runner.worker.model.user_id:
                runner.worker.model.user_id = user_id
            db.execute("INSERT INTO runners(user_id, id, nodepool_id, compute_cluster_id, seq, "
                       "proto) VALUES (?,?,?,?,?,?)",
                       (user_id, runner.id, req.nodepool_id, req.compute_cluster_id,
                        ctx.server.store.next_seq(db, "runners"), runner.SerializeToString()))
            created.append(runner)
    return service_pb2.MultiRunnerResponse(runners=created)


@rpc("GetRunner")
def get_runner(ctx: CallContext, req: service_pb2.GetRunnerRequest):
    runner = load_runner(ctx.server.store.read(), owner(req), req.runner_id)
    return service_pb2.SingleRunnerResponse(runner=runner)


@rpc("ListRunners")
def list_runners(ctx: CallContext, req: service_pb2.ListRunnersRequest):
    """The user's runners (those of one nodepool when it is named), oldest first."""
    limit, offset = page_window(req)
    sql, args = "SELECT proto FROM runners WHERE user_id=?", [owner(req)]
    if req.nodepool_id:
        sql += " AND nodepool_id=? AND compute_cluster_id=?"
        args += [req.nodepool_id, req.compute_cluster_id]
    runners = [resources_pb2.Runner.FromString(r[0]) for r in ctx.server.store.read().execute(
        sql + " ORDER BY seq", args)]
    if req.model_version_ids:
        wanted = set(req.model_version_ids)
        runners = [r for r in runners if r.worker.model.model_version.id in wanted]
    return service_pb2.MultiRunnerResponse(runners=runners[offset:offset + limit])


@rpc("DeleteRunners")
def delete_runners(ctx: CallContext, req: service_pb2.DeleteRunnersRequest):
    user_id = owner(req)
    if not req.ids:
        raise invalid("no runner ids given")
    with ctx.server.store.write() as db:
        for runner_id in req.ids:
            load_runner(db, user_id, runner_id)
        db.executemany("DELETE FROM runners WHERE user_id=? AND id=?",
                       [(user_id, i) for i in req.ids])
    return status_pb2.BaseResponse()


# -- work ---------------------------------------------------------------------------------

def _runner_of(ctx: CallContext, req: Any) -> tuple[str, str]:
    user_id = owner(req)
    if not req.runner_id:
        raise invalid("runner_id is required")
    load_runner(ctx.server.store.read(), user_id, req.runner_id)
    return user_id, req.runner_id


@rpc("ListRunnerItems")
def list_runner_items(ctx: CallContext, req: service_pb2.ListRunnerItemsRequest):
    """The next item for this runner, waiting up to POLL_WAIT s for one; none: status
    RUNNER_NEEDS_RETRY (poll again at once)."""
    user_id, runner_id = _runner_of(ctx, req)
    item = queue_of(ctx.server).claim(user_id, runner_id, POLL_WAIT)
    if item is None:
        return service_pb2.MultiRunnerItemResponse(
            status=status(codes.RUNNER_NEEDS_RETRY, "No work yet: poll again"))
    return service_pb2.MultiRunnerItemResponse(runner_items=[item.proto()])


def _answer(ctx: CallContext, user_id: str, runner_id: str,
            req: service_pb2.PostRunnerItemOutputsRequest) -> None:
    if not req.runner_item_id:
        raise invalid("runner_item_id is required")
    outputs = [o.multi_output_response for o in req.runner_item_outputs
               if o.HasField("multi_output_response")]
    if not outputs:
        response = service_pb2.MultiOutputResponse(status=req.status if req.HasField(
            "status") else status(codes.RUNNER_PROCESSING_FAILED, details="no outputs"))
    else:
        response = outputs[-1]
    queue_of(ctx.server).answer(user_id, runner_id, req.runner_item_id, response)


@rpc("PostRunnerItemOutputs")
def post_runner_item_outputs(ctx: CallContext, req: service_pb2.PostRunnerItemOutputsRequest):
    """A runner's answer to one item: its ``runner_item_outputs`` (one MultiOutputResponse)."""
    user_id, runner_id = _runner_of(ctx, req)
    _answer(ctx, user_id, runner_id, req)
    return service_pb2.MultiRunnerItemOutputResponse()


@rpc("ProcessRunnerItems")
def process_runner_items(ctx: CallContext,
                         requests: Iterator[service_pb2.PostRunnerItemOutputsRequest]):
    """The streaming form: the runner sends a first request naming itself (status
    RUNNER_STREAM_START), then one request per answered item; the server sends each item it
    claims for the runner, and ends a stream idle for STREAM_IDLE s (the runner reconnects).
    The official runner's control stream (runner id ``control-<id>``, for cancellations) is
    held open and sent nothing: the local server cancels nothing."""
    first = next(requests, None)
    if first is None:
        return
    control = first.runner_id.startswith(CONTROL_PREFIX)
    if control:
        first = _renamed(first, first.runner_id[len(CONTROL_PREFIX):])
    user_id, runner_id = _runner_of(ctx, first)
    queue = queue_of(ctx.server)
    closed = threading.Event()

    def read_answers() -> None:
        try:
            for req in itertools.chain([first], requests):
                if control or not req.runner_item_id:
                    queue.seen(user_id, runner_id)  # a start, keep-alive or status message
                    continue
                try:
                    _answer(ctx, user_id, runner_id, req)
                except RpcFailure as failure:
                    log.info("runner %s: %s", runner_id, failure.details)
        except Exception:  # the client went away mid-read  # noqa: BLE001
            pass
        finally:
            closed.set()

    reader = threading.Thread(target=read_answers, name=f"runner-{runner_id}", daemon=True)
    reader.start()
    if control:  # held open while the runner and the server are
        until = time.monotonic() + STREAM_IDLE
        while not closed.wait(POLL_WAIT) and time.monotonic() < until and \
                (ctx.grpc_context is None or ctx.grpc_context.is_active()):
            pass
        return
    queue.stream(user_id, runner_id, opened=True)
    try:
        grpc_context = ctx.grpc_context
        idle_since = time.monotonic()
        while not closed.is_set() and (grpc_context is None or grpc_context.is_active()):
            item = queue.claim(user_id, runner_id, POLL_WAIT)
            if item is not None:
                idle_since = time.monotonic()
                yield service_pb2.MultiRunnerItemResponse(status=status(),
                                                          runner_items=[item.proto()])
            elif time.monotonic() - idle_since > STREAM_IDLE:
                return
    finally:
        queue.stream(user_id, runner_id, opened=False)


def _renamed(req: service_pb2.PostRunnerItemOutputsRequest,
             runner_id: str) -> service_pb2.PostRunnerItemOutputsRequest:
    out = service_pb2.PostRunnerItemOutputsRequest()
    out.CopyFrom(req)
    out.runner_id = runner_id
    return out


# -- predictions on runner-served models --------------------------------------------------

def _runners_for(server: Any, model: resources_pb2.Model) -> frozenset[str]:
    rows = server.store.read().execute("SELECT proto FROM runners WHERE user_id=?",
                                       (model.user_id,))
    return frozenset(r.id for r in (resources_pb2.Runner.FromString(row[0]) for row in rows)
                     if serves(r, model))


def _outputs(model: resources_pb2.Model, inputs: Sequence[resources_pb2.Input],
             response: service_pb2.MultiOutputResponse) -> list[resources_pb2.Output]:
    """One Output per input from a runner's response (missing ones fail with its status)."""
    stamp = timestamp(now())
    slim = resources_pb2.Model(id=model.id, app_id=model.app_id, user_id=model.user_id,
                               model_type_id=model.model_type_id)
    slim.model_version.id = model.model_version.id
    failed = response.status if response.status.code not in (0, codes.SUCCESS,
                                                             codes.MIXED_STATUS) else \
        status(codes.MODEL_PREDICTION_FAILED, details="the runner returned no output for it")
    outputs = []
    for n, inp in enumerate(inputs):
        out = resources_pb2.Output()
        if n < len(response.outputs):
            out.CopyFrom(response.outputs[n])
            if not out.status.code:
                out.status.CopyFrom(status())
        else:
            out.status.CopyFrom(failed)
        out.id = out.id or new_id()
        if not out.HasField("created_at"):
            out.created_at.CopyFrom(stamp)
        out.model.CopyFrom(slim)
        out.input.id = inp.id
        outputs.append(out)
    return outputs


@predict.intercept
def serve_by_runner(server: Any, pk: int | None, model: resources_pb2.Model,
                    inputs: Sequence[resources_pb2.Input],
                    output_info: resources_pb2.OutputInfo) -> list[resources_pb2.Output] | None:
    """Answer a prediction through a runner when one of the owner's runners serves the
    model (None: no runner serves it, the model computes itself)."""
    if pk is None:
        return None  # the built-in models are the server's own
    runners = _runners_for(server, model)
    if not runners:
        return None
    inputs = with_stored_data(server.store.read(), pk, inputs)
    request = service_pb2.PostModelOutputsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=model.user_id, app_id=model.app_id),
        model_id=model.id, version_id=model.model_version.id, inputs=inputs)
    request.model.CopyFrom(model)
    request.model.model_version.output_info.MergeFrom(output_info)
    timeout = RUNNER_TIMEOUT
    call = current_call()
    remaining = call.grpc_context.time_remaining() if call and call.grpc_context else None
    if remaining is not None:
        timeout = max(0.0, min(timeout, remaining - min(ANSWER_MARGIN, remaining / 5)))
    item = QueuedItem(owner=model.user_id, runners=runners, request=request)
    active = call.grpc_context.is_active if call and call.grpc_context else lambda: True
    response = queue_of(server).run(item, timeout, active)
    return _outputs(model, inputs, response)
