"""Built-in models: the server's embedders, answered as models of the app ``clarifai/main``
as the platform's public models are, and the base workflows that name them.

A built-in model has one version (its id derives from the embedder's name and size, so it
stays the same across restarts) with status MODEL_TRAINED; PostModelOutputs on it returns
``data.embeddings``. The base workflows (``Universal``, ``General``,
``Language-Understanding``, ``Empty``) are given by :func:`base_workflows` for the
workflow RPCs to serve.
"""

from __future__ import annotations

import hashlib
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from ..rpc import RpcFailure, status
from .features import EmbedderInfo, default_embedders, embedders

BUILTIN_USER = "clarifai"
BUILTIN_APP = "main"
_TYPES = {frozenset({"image"}): "visual-embedder", frozenset({"text"}): "text-embedder"}


def is_builtin_app(user_id: str, app_id: str) -> bool:
    """Whether ``user_id/app_id`` is the app of the built-in models."""
    return user_id == BUILTIN_USER and app_id == BUILTIN_APP


def version_id(info: EmbedderInfo) -> str:
    """The stable version id of an embedder's model."""
    return hashlib.sha256(f"{info.name}:{info.dim}".encode()).hexdigest()[:32]


def _model(info: EmbedderInfo) -> resources_pb2.Model:
    version = resources_pb2.ModelVersion(
        id=version_id(info), status=status(codes.MODEL_TRAINED, "Model is trained and ready"),
        app_id=BUILTIN_APP, user_id=BUILTIN_USER,
        description=f"{info.dim}-dimensional {' and '.join(sorted(info.kinds))} embeddings",
        visibility=resources_pb2.Visibility(gettable=resources_pb2.Visibility.PUBLIC))
    version.metadata.update({"embedder": info.name, "dimensions": info.dim})
    return resources_pb2.Model(
        id=info.name, name=info.name, app_id=BUILTIN_APP, user_id=BUILTIN_USER,
        model_type_id=_TYPES.get(info.kinds, "multimodal-embedder"),
        description=info.description or "One of the local server's embedders.",
        visibility=resources_pb2.Visibility(gettable=resources_pb2.Visibility.PUBLIC),
        model_version=version, version_count=1)


def models(server: Any) -> list[resources_pb2.Model]:
    """Every built-in model of ``server``."""
    return [_model(info) for info in embedders(server)]


def embedder_of(server: Any, model: resources_pb2.Model) -> EmbedderInfo | None:
    """The embedder a built-in model stands for (None: not a built-in model)."""
    if not is_builtin_app(model.user_id, model.app_id):
        return None
    return next((e for e in embedders(server) if e.name == model.id), None)


def model(server: Any, model_id: str, version: str = "") -> resources_pb2.Model:
    """The built-in model ``model_id`` (at ``version``, its only one)."""
    for info in embedders(server):
        if info.name == model_id:
            if version and version != version_id(info):
                raise RpcFailure(codes.CONN_DOES_NOT_EXIST, "Resource does not exist",
                                 f"version '{version}' of model '{model_id}' does not exist")
            return _model(info)
    raise RpcFailure(codes.MODEL_DOES_NOT_EXIST, "Model does not exist",
                     f"model '{model_id}' does not exist")


def base_workflows(server: Any = None) -> list[resources_pb2.Workflow]:
    """The base workflows an app may name as its default, each naming built-in models (the
    server's default embedder of each media kind)."""
    defaults = default_embedders(server)
    known = {info.name: info for info in embedders(server)}
    by_kind = {kind: known[name] for kind, name in defaults.items() if name in known}
    plan = {"Universal": ("image", "text"), "General": ("image",),
            "Language-Understanding": ("text",), "Empty": ()}
    out = []
    for workflow_id, kinds in plan.items():
        workflow = resources_pb2.Workflow(id=workflow_id, app_id=BUILTIN_APP,
                                          user_id=BUILTIN_USER)
        for kind in kinds:
            if kind in by_kind and not any(n.model.id == by_kind[kind].name
                                           for n in workflow.nodes):
                node = workflow.nodes.add(id=f"{kind}-embed")
                node.model.CopyFrom(_model(by_kind[kind]))
        out.append(workflow)
    return out
