"""Workflows: PostWorkflows, GetWorkflow, ListWorkflows, PatchWorkflows, DeleteWorkflows,
DeleteWorkflow, ListWorkflowVersions, GetWorkflowVersion, PostWorkflowResults.

A workflow is a graph of model nodes: a node without ``node_inputs`` reads the workflow's
input, a node with them reads what those nodes produced (the input's data with their
outputs' data merged in: embeddings, concepts, regions). Nodes are checked when the
workflow is stored (unique ids, inputs that exist, no cycle, models that exist, each pinned
to a version). PostWorkflowResults runs the nodes in dependency order through the one
prediction entry point (:func:`.predict.predict`, where runners intercept too) and returns,
per input, every node's output in the order the nodes are declared (suppressed nodes left
out), as the API does. The base workflows (``Universal`` …) of the built-in app
``clarifai/main`` are real workflows over the built-in embedders.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from clarifai_grpc.grpc.api.status import status_pb2

from ..annotations import new_id
from ..common import (
    app_pk,
    fresh_copy,
    invalid,
    page_window,
    patch_action,
    patch_message,
    require_id,
    stamp_created,
    timestamp,
    user_app,
    with_stored_data,
)
from ..rpc import CallContext, RpcFailure, rpc, status
from ..store import now
from . import builtin

MAX_INPUTS = 32
_SERVER_FIELDS = ("created_at", "modified_at", "app_id", "user_id", "version", "is_starred",
                  "star_count", "bookmark_origin")


def workflow_missing(workflow_id: str) -> RpcFailure:
    """The failure for an unknown workflow id."""
    return RpcFailure(codes.WORKFLOW_DOES_NOT_EXIST, "Workflow does not exist",
                      f"workflow '{workflow_id}' does not exist")


def _builtin(server: Any, workflow_id: str) -> resources_pb2.Workflow | None:
    return next((w for w in builtin.base_workflows(server) if w.id == workflow_id), None)


def _load(db: sqlite3.Connection, pk: int, workflow_id: str) -> resources_pb2.Workflow:
    row = db.execute("SELECT proto FROM workflows WHERE app_pk=? AND id=?",
                     (pk, workflow_id)).fetchone()
    if row is None:
        raise workflow_missing(workflow_id)
    return resources_pb2.Workflow.FromString(row[0])


def _load_version(db: sqlite3.Connection, pk: int, workflow_id: str,
                  version_id: str = "") -> resources_pb2.WorkflowVersion | None:
    if version_id:
        row = db.execute("SELECT proto FROM workflow_versions WHERE app_pk=? AND workflow_id=? "
                         "AND id=?", (pk, workflow_id, version_id)).fetchone()
    else:
        row = db.execute("SELECT proto FROM workflow_versions WHERE app_pk=? AND workflow_id=? "
                         "ORDER BY seq DESC LIMIT 1", (pk, workflow_id)).fetchone()
    return resources_pb2.WorkflowVersion.FromString(row[0]) if row else None


def find_workflow(server: Any, req: Any, workflow_id: str,
                  version_id: str = "") -> tuple[int | None, resources_pb2.Workflow]:
    """(app pk, workflow at ``version_id`` or its newest version) for a request's app; the
    base workflows answer in ``clarifai/main`` (pk None) and in any app that has no
    workflow of that id."""
    if not workflow_id:
        raise invalid("workflow_id is required")
    user_id, app_id = user_app(req)
    if builtin.is_builtin_app(user_id, app_id):
        base = _builtin(server, workflow_id)
        if base is None:
            raise workflow_missing(workflow_id)
        return None, base
    db = server.store.read()
    pk = app_pk(db, req)
    try:
        workflow = _load(db, pk, workflow_id)
    except RpcFailure:
        base = _builtin(server, workflow_id)
        if base is None or version_id:
            raise
        return None, base
    version = _load_version(db, pk, workflow_id, version_id)
    if version is None:
        raise RpcFailure(codes.CONN_DOES_NOT_EXIST, "Resource does not exist",
                         f"version '{version_id}' of workflow '{workflow_id}' does not exist")
    return pk, _at_version(workflow, version)


def _at_version(workflow: resources_pb2.Workflow,
                version: resources_pb2.WorkflowVersion) -> resources_pb2.Workflow:
    workflow.version.CopyFrom(version)
    del workflow.nodes[:]
    workflow.nodes.extend(version.nodes)
    return workflow


def dependency_order(nodes: Sequence[resources_pb2.WorkflowNode]) -> list[int]:
    """Indexes of ``nodes`` so that each comes after the nodes it reads; fails the call on
    an empty or duplicate node id, an input naming no node, or a cycle."""
    index: dict[str, int] = {}
    for n, node in enumerate(nodes):
        if not node.id:
            raise invalid(f"nodes[{n}] has no id")
        if node.id in index:
            raise invalid(f"node id '{node.id}' is used twice")
        index[node.id] = n
    for node in nodes:
        for node_input in node.node_inputs:
            if node_input.node_id not in index:
                raise invalid(f"node '{node.id}' reads node '{node_input.node_id}', which the "
                              "workflow does not have")
    order: list[int] = []
    state: dict[int, str] = {}

    def visit(n: int, path: tuple[str, ...]) -> None:
        if state.get(n) == "done":
            return
        if state.get(n) == "open":
            raise invalid(f"the nodes form a cycle: {' -> '.join(path + (nodes[n].id,))}")
        state[n] = "open"
        for node_input in nodes[n].node_inputs:
            visit(index[node_input.node_id], path + (nodes[n].id,))
        state[n] = "done"
        order.append(n)

    for n in range(len(nodes)):
        visit(n, ())
    return order


def _model_of(ctx: CallContext, db: sqlite3.Connection, req: Any,
              node: resources_pb2.WorkflowNode) -> resources_pb2.Model:
    """The node's model, resolved where it lives and pinned to a version."""
    from .models import resolve

    given = node.model
    if not given.id:
        raise invalid(f"node '{node.id}' names no model")
    where = SimpleNamespace(user_app_id=resources_pb2.UserAppIDSet(
        user_id=given.user_id or req.user_app_id.user_id,
        app_id=given.app_id or req.user_app_id.app_id))
    _, model = resolve(ctx, where, given.id, given.model_version.id, db=db)
    if not model.model_version.id:
        raise RpcFailure(codes.MODEL_DOES_NOT_EXIST, "Model has no version",
                         f"model '{given.id}' of node '{node.id}' has no version yet")
    return model


def _checked_nodes(ctx: CallContext, db: sqlite3.Connection, req: Any,
                   nodes: Sequence[resources_pb2.WorkflowNode]) -> list[resources_pb2.WorkflowNode]:
    if not nodes:
        raise invalid("a workflow needs at least one node")
    dependency_order(nodes)
    checked = []
    for node in nodes:
        stored = resources_pb2.WorkflowNode()
        stored.CopyFrom(node)
        stored.model.CopyFrom(_model_of(ctx, db, req, node))
        checked.append(stored)
    return checked


def _store_version(ctx: CallContext, db: sqlite3.Connection, pk: int,
                   workflow: resources_pb2.Workflow, stamp: float,
                   version_id: str = "") -> resources_pb2.WorkflowVersion:
    version = resources_pb2.WorkflowVersion(id=version_id or new_id(), workflow_id=workflow.id,
                                            nodes=workflow.nodes)
    version.metadata.CopyFrom(workflow.metadata)
    version.description = workflow.description
    version.visibility.CopyFrom(workflow.visibility)
    stamp_created(version, workflow.user_id, workflow.app_id, stamp)
    require_id(version.id, "workflow version id")
    db.execute("INSERT INTO workflow_versions(app_pk, workflow_id, id, seq, proto, created_at) "
               "VALUES (?,?,?,?,?,?)",
               (pk, workflow.id, version.id, ctx.server.store.next_seq(db, "workflow_versions"),
                version.SerializeToString(), stamp))
    return version


def _save(db: sqlite3.Connection, pk: int, workflow: resources_pb2.Workflow) -> None:
    stored = resources_pb2.Workflow()
    stored.CopyFrom(workflow)
    stored.ClearField("version")  # versions live in their own table
    db.execute("UPDATE workflows SET proto=? WHERE app_pk=? AND id=?",
               (stored.SerializeToString(), pk, workflow.id))


@rpc("PostWorkflows")
def post_workflows(ctx: CallContext, req: service_pb2.PostWorkflowsRequest):
    if not req.workflows:
        raise invalid("no workflows given")
    created = []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        for given in req.workflows:
            workflow = fresh_copy(db, "workflows", {"app_pk": pk}, given, "workflow",
                                  (*_SERVER_FIELDS, "nodes"))
            workflow.nodes.extend(_checked_nodes(ctx, db, req, given.nodes))
            stamp = now()
            stamp_created(workflow, req.user_app_id.user_id, req.user_app_id.app_id, stamp)
            db.execute("INSERT INTO workflows(app_pk, id, seq, proto, created_at) "
                       "VALUES (?,?,?,?,?)",
                       (pk, workflow.id, ctx.server.store.next_seq(db, "workflows"), b"", stamp))
            _save(db, pk, workflow)
            version = _store_version(ctx, db, pk, workflow, stamp, given.version.id)
            created.append(_at_version(workflow, version))
    return service_pb2.MultiWorkflowResponse(workflows=created)


@rpc("GetWorkflow")
def get_workflow(ctx: CallContext, req: service_pb2.GetWorkflowRequest):
    _, workflow = find_workflow(ctx.server, req, req.workflow_id)
    return service_pb2.SingleWorkflowResponse(workflow=workflow)


def _matches(workflow: resources_pb2.Workflow, req: service_pb2.ListWorkflowsRequest) -> bool:
    if req.id and workflow.id != req.id:
        return False
    needle = (req.search or req.query or req.search_term).lower()
    return not needle or needle in workflow.id.lower() or needle in workflow.description.lower()


@rpc("ListWorkflows")
def list_workflows(ctx: CallContext, req: service_pb2.ListWorkflowsRequest):
    limit, offset = page_window(req)
    user_id, app_id = user_app(req)
    if req.starred_only or req.bookmark or req.featured_only:
        return service_pb2.MultiWorkflowResponse()  # no stars, bookmarks or features here
    if builtin.is_builtin_app(user_id, app_id):
        found = [w for w in builtin.base_workflows(ctx.server) if _matches(w, req)]
    else:
        db = ctx.server.store.read()
        pk = app_pk(db, req)
        found = []
        for (blob,) in db.execute("SELECT proto FROM workflows WHERE app_pk=? ORDER BY seq",
                                  (pk,)):
            workflow = resources_pb2.Workflow.FromString(blob)
            if _matches(workflow, req):
                found.append(workflow)
        key = None
        if req.sort_by_id:
            key = lambda w: w.id  # noqa: E731
        elif req.sort_by_created_at:
            key = lambda w: w.created_at.ToNanoseconds()  # noqa: E731
        elif req.sort_by_modified_at:
            key = lambda w: w.modified_at.ToNanoseconds()  # noqa: E731
        if key is not None:  # an explicit sort is descending unless sort_ascending
            found.sort(key=key, reverse=not req.sort_ascending)
        found = [_at_version(w, _load_version(db, pk, w.id)) for w in found[offset:offset + limit]]
        return service_pb2.MultiWorkflowResponse(workflows=found)
    return service_pb2.MultiWorkflowResponse(workflows=found[offset:offset + limit])


@rpc("PatchWorkflows")
def patch_workflows(ctx: CallContext, req: service_pb2.PatchWorkflowsRequest):
    """Patch workflows; new ``nodes`` make a new version (the old ones stay listed)."""
    action = patch_action(req.action)
    if not req.workflows:
        raise invalid("no workflows given")
    patched = []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        for patch in req.workflows:
            workflow = _load(db, pk, patch.id)
            patch_message(workflow, patch, action, frozen=(*_SERVER_FIELDS, "nodes"))
            stamp = now()
            workflow.modified_at.CopyFrom(timestamp(stamp))
            if patch.nodes and action != "remove":
                del workflow.nodes[:]
                workflow.nodes.extend(_checked_nodes(ctx, db, req, patch.nodes))
                version = _store_version(ctx, db, pk, workflow, stamp)
            else:
                version = _load_version(db, pk, workflow.id)
            _save(db, pk, workflow)
            patched.append(_at_version(workflow, version))
    return service_pb2.MultiWorkflowResponse(workflows=patched)


def _delete(db: sqlite3.Connection, pk: int, workflow_ids: Sequence[str]) -> None:
    for workflow_id in workflow_ids:  # all must exist before anything is deleted
        _load(db, pk, workflow_id)
    for workflow_id in workflow_ids:
        db.execute("DELETE FROM workflows WHERE app_pk=? AND id=?", (pk, workflow_id))
        db.execute("DELETE FROM workflow_versions WHERE app_pk=? AND workflow_id=?",
                   (pk, workflow_id))


@rpc("DeleteWorkflows")
def delete_workflows(ctx: CallContext, req: service_pb2.DeleteWorkflowsRequest):
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        ids = list(req.ids)
        if req.delete_all:
            ids = [r[0] for r in db.execute("SELECT id FROM workflows WHERE app_pk=?", (pk,))]
        elif not ids:
            raise invalid("no workflow ids given (or delete_all)")
        _delete(db, pk, ids)
    return status_pb2.BaseResponse()


@rpc("DeleteWorkflow")
def delete_workflow(ctx: CallContext, req: service_pb2.DeleteWorkflowRequest):
    with ctx.server.store.write() as db:
        _delete(db, app_pk(db, req), [req.workflow_id])
    return status_pb2.BaseResponse()


@rpc("ListWorkflowVersions")
def list_workflow_versions(ctx: CallContext, req: service_pb2.ListWorkflowVersionsRequest):
    """A workflow's versions, newest first."""
    limit, offset = page_window(req)
    db = ctx.server.store.read()
    pk, workflow = find_workflow(ctx.server, req, req.workflow_id)
    if pk is None:  # a base workflow has the one version it is
        versions = [_base_version(workflow)][offset:offset + limit]
    else:
        versions = [resources_pb2.WorkflowVersion.FromString(r[0]) for r in db.execute(
            "SELECT proto FROM workflow_versions WHERE app_pk=? AND workflow_id=? "
            "ORDER BY seq DESC LIMIT ? OFFSET ?", (pk, workflow.id, limit, offset))]
    return service_pb2.MultiWorkflowVersionResponse(workflow_versions=versions)


@rpc("GetWorkflowVersion")
def get_workflow_version(ctx: CallContext, req: service_pb2.GetWorkflowVersionRequest):
    pk, workflow = find_workflow(ctx.server, req, req.workflow_id,
                                 req.workflow_version_id)
    version = _base_version(workflow) if pk is None else workflow.version
    return service_pb2.SingleWorkflowVersionResponse(workflow_version=version)


def _base_version(workflow: resources_pb2.Workflow) -> resources_pb2.WorkflowVersion:
    return resources_pb2.WorkflowVersion(id=workflow.id.lower(), workflow_id=workflow.id,
                                         nodes=workflow.nodes, app_id=workflow.app_id,
                                         user_id=workflow.user_id)


# -- running ------------------------------------------------------------------------------

def _model_app_pk(db: sqlite3.Connection, model: resources_pb2.Model) -> int | None:
    if builtin.is_builtin_app(model.user_id, model.app_id):
        return None
    row = db.execute("SELECT pk FROM apps WHERE user_id=? AND id=?",
                     (model.user_id, model.app_id)).fetchone()
    if row is None:
        raise RpcFailure(codes.MODEL_DOES_NOT_EXIST, "Model does not exist",
                         f"the app of model '{model.id}' no longer exists")
    return row[0]


def _node_inputs(inputs: Sequence[resources_pb2.Input], node: resources_pb2.WorkflowNode,
                 produced: dict[str, list[resources_pb2.Output]]) -> list[resources_pb2.Input]:
    """What a node reads: each input, with the data its input nodes produced merged in."""
    if not node.node_inputs:
        return list(inputs)
    out = []
    for n, inp in enumerate(inputs):
        merged = resources_pb2.Input()
        merged.CopyFrom(inp)
        for node_input in node.node_inputs:
            merged.data.MergeFrom(produced[node_input.node_id][n].data)
        out.append(merged)
    return out


def _failed_outputs(node: resources_pb2.WorkflowNode, inputs: Sequence[resources_pb2.Input],
                    code: int, details: str) -> list[resources_pb2.Output]:
    stamp = timestamp(now())
    model = resources_pb2.Model(id=node.model.id, app_id=node.model.app_id,
                                user_id=node.model.user_id,
                                model_type_id=node.model.model_type_id)
    model.model_version.id = node.model.model_version.id
    return [resources_pb2.Output(id=new_id(), created_at=stamp, model=model,
                                 input=resources_pb2.Input(id=inp.id),
                                 status=status(code, details=details)) for inp in inputs]


def run_workflow(ctx: CallContext, workflow: resources_pb2.Workflow,
                 inputs: Sequence[resources_pb2.Input],
                 output_config: resources_pb2.OutputConfig | None = None,
                 ) -> dict[str, list[resources_pb2.Output]]:
    """Every node's outputs (one per input), by node id, the nodes run in dependency order.

    An input whose output from an input node failed does not reach the node (its output
    there fails too); a node whose model fails as a whole fails every input it got. The
    other nodes still run."""
    from .predict import predict

    db = ctx.server.store.read()
    nodes = list(workflow.nodes)
    produced: dict[str, list[resources_pb2.Output]] = {}
    for n in dependency_order(nodes):
        node = nodes[n]
        outputs: list[resources_pb2.Output | None] = [None] * len(inputs)
        for row in range(len(inputs)):
            failed = next((i.node_id for i in node.node_inputs
                           if produced[i.node_id][row].status.code != codes.SUCCESS), None)
            if failed is not None:
                outputs[row] = _failed_outputs(
                    node, [inputs[row]], codes.MODEL_PREDICTION_FAILED,
                    f"node '{node.id}' did not run: its input node '{failed}' failed")[0]
        rows = [row for row in range(len(inputs)) if outputs[row] is None]
        if rows:
            output_info = resources_pb2.OutputInfo()
            if output_config is not None:
                output_info.output_config.CopyFrom(output_config)
            if node.HasField("output_info_override"):
                output_info.MergeFrom(node.output_info_override)
            reads = _node_inputs([inputs[row] for row in rows], node,
                                 {k: [v[row] for row in rows] for k, v in produced.items()})
            try:
                computed = predict(ctx.server, _model_app_pk(db, node.model), node.model,
                                   reads, output_info)
            except RpcFailure as failure:
                computed = _failed_outputs(node, reads, failure.code,
                                           failure.details or failure.description)
            for row, output in zip(rows, computed, strict=True):
                outputs[row] = output
        produced[node.id] = outputs
    return produced


def _overall(codes_seen: Sequence[bool]) -> status_pb2.Status:
    failed = sum(not ok for ok in codes_seen)
    if not failed:
        return status()
    return status(codes.FAILURE if failed == len(codes_seen) else codes.MIXED_STATUS)


@rpc("PostWorkflowResults")
def post_workflow_results(ctx: CallContext, req: service_pb2.PostWorkflowResultsRequest):
    """Run a workflow (its newest version, or ``version_id``) on at most 32 inputs."""
    if not req.inputs:
        raise invalid("no inputs given")
    if len(req.inputs) > MAX_INPUTS:
        raise invalid(f"{len(req.inputs)} inputs given: at most {MAX_INPUTS} per call")
    _, workflow = find_workflow(ctx.server, req, req.workflow_id, req.version_id)
    if not workflow.nodes:
        raise invalid(f"workflow '{workflow.id}' has no nodes to run")
    inputs = list(req.inputs)
    if not builtin.is_builtin_app(*user_app(req)):  # inputs given by id are the app's
        inputs = with_stored_data(ctx.server.store.read(), app_pk(ctx.server.store.read(), req),
                                  inputs)
    for given in inputs:
        given.id = given.id or new_id()
    produced = run_workflow(ctx, workflow, inputs,
                            req.output_config if req.HasField("output_config") else None)
    stamp = timestamp(now())
    results = []
    for n, inp in enumerate(inputs):
        outputs = [produced[node.id][n] for node in workflow.nodes if not node.suppress_output]
        echoed = resources_pb2.Input(id=inp.id)
        echoed.data.CopyFrom(inp.data)
        for kind in ("image", "video", "audio"):  # answers carry no raw media bytes
            if echoed.data.HasField(kind):
                getattr(echoed.data, kind).ClearField("base64")
        result = resources_pb2.WorkflowResult(
            id=new_id(), created_at=stamp, input=echoed, outputs=outputs,
            status=_overall([o.status.code == codes.SUCCESS for o in outputs]))
        results.append(result)
    overall = _overall([r.status.code == codes.SUCCESS for r in results])
    response = service_pb2.PostWorkflowResultsResponse(status=overall, workflow=workflow,
                                                       results=results)
    if req.workflow_state.id:
        response.workflow_state.id = req.workflow_state.id
    return response
