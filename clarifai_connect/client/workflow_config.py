"""The workflow YAML the official SDK reads and writes: checking it, and writing a workflow
back as one.

::

    workflow:
      id: my-workflow
      nodes:
        - id: embed
          model: {model_id: text-embedder, user_id: clarifai, app_id: main}
        - id: classify
          model: {model_id: my-classifier, model_version_id: 0123…cdef}
          node_inputs: [{node_id: embed}]

A node's ``model`` takes ``model_id`` and optionally ``user_id``, ``app_id``,
``model_version_id`` (32 hex digits), ``model_type_id``, ``description`` and
``output_info: {params: {…}}``; a version id may come with ``model_id``/``user_id``/
``app_id`` only. A node's inputs must be declared before it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from clarifai_grpc.grpc.api import resources_pb2

from ..errors import UserError

_ID = re.compile(r"^[0-9A-Za-z]+([-_][0-9A-Za-z]+)*$")
_VERSION_ID = re.compile(r"^[0-9a-fA-F]{32}")
_MODEL_KEYS = {"model_id", "app_id", "user_id", "model_version_id", "model_type_id",
               "description", "output_info"}
_PINNED_KEYS = {"model_id", "model_version_id", "user_id", "app_id"}


def _check_id(value: Any, what: str, where: str) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= 48 or not _ID.match(value):
        raise UserError(f"{where}: {what} {value!r} is not a valid id (1-48 letters, digits, "
                        "and single '-' or '_' between them).")


def _check_model(model: Any, where: str) -> None:
    if not isinstance(model, dict):
        raise UserError(f"{where}: model must be a mapping with model_id.")
    unknown = sorted(set(model) - _MODEL_KEYS)
    if unknown:
        raise UserError(f"{where}: model has unknown key(s) {', '.join(unknown)}.")
    if "model_id" not in model:
        raise UserError(f"{where}: model needs a model_id.")
    for key in ("model_id", "app_id", "user_id", "model_type_id"):
        if key in model:
            _check_id(model[key], key, where)
    if "model_version_id" in model:
        version = model["model_version_id"]
        if not isinstance(version, str) or not _VERSION_ID.match(version):
            raise UserError(f"{where}: model_version_id {version!r} is not 32 hex digits.")
        extra = sorted(set(model) - _PINNED_KEYS)
        if extra:
            raise UserError(f"{where}: model sets model_version_id and {', '.join(extra)}: "
                            "remove model_version_id or the other model fields.")
    if "description" in model and not isinstance(model["description"], str):
        raise UserError(f"{where}: model description must be a string.")
    if "output_info" in model:
        info = model["output_info"]
        if not isinstance(info, dict) or set(info) - {"params"} or \
                not isinstance(info.get("params", {}), dict):
            raise UserError(f"{where}: output_info takes only params (a mapping).")


def validate(config: Any, source: str = "workflow config") -> dict[str, Any]:
    """The ``workflow`` mapping of a parsed config, checked as the official SDK checks it;
    UserError naming ``source`` and the node on the first problem."""
    if not isinstance(config, dict) or set(config) != {"workflow"}:
        raise UserError(f"{source}: expected one top-level key 'workflow'.")
    workflow = config["workflow"]
    if not isinstance(workflow, dict) or set(workflow) != {"id", "nodes"}:
        raise UserError(f"{source}: 'workflow' takes exactly 'id' and 'nodes'.")
    _check_id(workflow["id"], "workflow id", source)
    nodes = workflow["nodes"]
    if not isinstance(nodes, list) or not nodes:
        raise UserError(f"{source}: 'nodes' must be a non-empty list.")
    declared: set[str] = set()
    for n, node in enumerate(nodes):
        where = f"{source}: nodes[{n}]"
        if not isinstance(node, dict) or set(node) - {"id", "model", "node_inputs"}:
            raise UserError(f"{where}: a node takes id, model and node_inputs.")
        node_id = node.get("id")
        if not isinstance(node_id, str) or not node_id:
            raise UserError(f"{where}: a node needs a non-empty id.")
        where = f"{source}: node '{node_id}'"
        _check_model(node.get("model"), where)
        if "node_inputs" in node:
            inputs = node["node_inputs"]
            if not isinstance(inputs, list) or not inputs:
                raise UserError(f"{where}: node_inputs must be a non-empty list.")
            for node_input in inputs:
                if not isinstance(node_input, dict) or set(node_input) != {"node_id"} or \
                        not node_input["node_id"]:
                    raise UserError(f"{where}: each node_inputs item is {{node_id: …}}.")
                if node_input["node_id"] not in declared:
                    raise UserError(f"{where}: missing input '{node_input['node_id']}' (a "
                                    "node's inputs must be declared before it).")
        declared.add(node_id)
    return workflow


def load(path: str | Path) -> dict[str, Any]:
    """Read and check a workflow YAML file; returns its ``workflow`` mapping."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Workflow config file not found at {path}.")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML: {err}") from None
    return validate(config, str(path))


def to_config(workflow: resources_pb2.Workflow) -> dict[str, Any]:
    """A workflow as the YAML mapping :func:`load` reads back into the same graph (each node
    pinned to its model version)."""
    nodes = []
    for node in workflow.nodes:
        entry: dict[str, Any] = {"id": node.id, "model": {
            "model_id": node.model.id, "model_version_id": node.model.model_version.id,
            "user_id": node.model.user_id, "app_id": node.model.app_id}}
        if node.node_inputs:
            entry["node_inputs"] = [{"node_id": i.node_id} for i in node.node_inputs]
        nodes.append(entry)
    return {"workflow": {"id": workflow.id, "nodes": nodes}}


def dump(workflow: resources_pb2.Workflow, out_path: str | Path) -> None:
    """Write a workflow as YAML to ``out_path``."""
    text = yaml.safe_dump(to_config(workflow), sort_keys=False, default_flow_style=False)
    Path(out_path).write_text(text, encoding="utf-8")


def tree_lines(nodes: list[resources_pb2.WorkflowNode]) -> list[str]:
    """The nodes as an indented tree from the input (a node under each node it reads)."""
    children: dict[str, list[resources_pb2.WorkflowNode]] = {"": []}
    for node in nodes:
        for parent in [i.node_id for i in node.node_inputs] or [""]:
            children.setdefault(parent, []).append(node)
    lines = ["Input"]

    def walk(parent: str, depth: int) -> None:
        for node in children.get(parent, []):
            lines.append(f"{'  ' * depth}└─ {node.id} ({node.model.id})")
            walk(node.id, depth + 1)

    walk("", 1)
    return lines
