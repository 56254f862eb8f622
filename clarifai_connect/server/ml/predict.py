"""Prediction: PostModelOutputs, and :func:`predict`, the one place every prediction runs.

``predict(server, pk, model, inputs, output_info) -> outputs`` takes a model with its
version (as :func:`.models.resolve` gives it), at most 128 inputs (media by bytes or URL,
or an id of an input stored in app ``pk``) and the request's ``OutputInfo`` overrides, and
returns one ``Output`` per input (per-input failures carry their own status). Workflows
call it for each model node. A runner-served model is answered by an *interceptor*:
:func:`intercept` registers ``fn(server, pk, model, inputs, output_info)`` that returns the
outputs, or None to let the next interceptor (and finally the model itself) answer.

What a model computes: a built-in embedder or an embedder-type version returns
``data.embeddings``; a trained classifier returns ``data.concepts`` scored by its head on
the inputs' embeddings, filtered by ``output_config`` (``select_concepts`` by id or name,
then ``min_value``, then the best ``max_concepts``; 20 by default as on the API).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from .. import downloads, media_blobs
from ..annotations import new_id
from ..common import invalid, timestamp
from ..rpc import CallContext, RpcFailure, rpc, status
from ..store import now
from . import builtin, features
from .heads import Head
from .model_types import KINDS

MAX_INPUTS = 128
DEFAULT_MAX_CONCEPTS = 20
Interceptor = Callable[[Any, "int | None", resources_pb2.Model, Sequence[resources_pb2.Input],
                        resources_pb2.OutputInfo], "list[resources_pb2.Output] | None"]
_INTERCEPTORS: list[Interceptor] = []
_heads: dict[tuple, Head] = {}
_heads_lock = threading.Lock()


def intercept(fn: Interceptor) -> Interceptor:
    """Register an interceptor (e.g. runners); usable as a decorator. Returns ``fn``."""
    _INTERCEPTORS.append(fn)
    return fn


def load_head(server: Any, pk: int, model_id: str, version_id: str) -> Head | None:
    """The trained head of a version (cached: a trained version never changes)."""
    key = (id(server), pk, model_id, version_id)
    with _heads_lock:
        if key in _heads:
            return _heads[key]
    row = server.store.read().execute(
        "SELECT head FROM model_versions WHERE app_pk=? AND model_id=? AND id=?",
        (pk, model_id, version_id)).fetchone()
    if row is None or row[0] is None:
        return None
    head = Head.from_bytes(row[0])
    with _heads_lock:
        _heads[key] = head
    return head


def forget_heads(server: Any) -> None:
    """Drop the cached heads of ``server`` (after versions are deleted)."""
    with _heads_lock:
        for key in [k for k in _heads if k[0] == id(server)]:
            del _heads[key]


def output_config(model: resources_pb2.Model,
                  override: resources_pb2.OutputInfo | None) -> resources_pb2.OutputConfig:
    """The version's output config with the request's set fields on top."""
    config = resources_pb2.OutputConfig()
    config.CopyFrom(model.model_version.output_info.output_config)
    if override is not None and override.HasField("output_config"):
        for field, value in override.output_config.ListFields():
            if field.is_repeated:
                del getattr(config, field.name)[:]
                getattr(config, field.name).extend(value)
            elif field.message_type is not None:
                getattr(config, field.name).CopyFrom(value)
            else:
                setattr(config, field.name, value)
    return config


def select(concepts: list[str], names: dict[str, str], scores: np.ndarray,
           config: resources_pb2.OutputConfig) -> list[resources_pb2.Concept]:
    """The concepts of one input's ``scores`` that ``config`` lets through, best first."""
    order = sorted(range(len(concepts)), key=lambda j: -float(scores[j]))
    if config.select_concepts:
        wanted = {c.id for c in config.select_concepts if c.id} | \
                 {c.name for c in config.select_concepts if c.name}
        order = [j for j in order if concepts[j] in wanted or names.get(concepts[j]) in wanted]
    order = [j for j in order if float(scores[j]) >= config.min_value]
    limit = config.max_concepts or DEFAULT_MAX_CONCEPTS
    return [resources_pb2.Concept(id=concepts[j], name=names.get(concepts[j], concepts[j]),
                                  value=float(scores[j])) for j in order[:limit]]


class _Batch:
    """The inputs of one call, resolved to vectors row by row (failures kept per row)."""

    def __init__(self, inputs: Sequence[resources_pb2.Input]) -> None:
        self.inputs = list(inputs)
        self.vectors: list[np.ndarray | None] = [None] * len(self.inputs)
        self.failures: dict[int, resources_pb2.Status] = {}

    def fail(self, row: int, code: int, details: str) -> None:
        self.failures[row] = status(code, details=details)


def _media(server: Any, data: resources_pb2.Data, kind: str) -> str | bytes:
    """The item an embedder takes for ``data``: its text, or its media bytes (URL media
    fetched, hosted media read)."""
    if kind == "text":
        text = data.text
        if text.raw:
            return text.raw
        raw = media_blobs.read(server, text.hosted.suffix) if text.hosted.suffix else \
            downloads.fetch(text.url, server.download_timeout)
        return raw.decode("utf-8", errors="replace")
    image = data.image
    if image.base64:
        return image.base64
    if image.hosted.suffix:
        return media_blobs.read(server, image.hosted.suffix)
    return downloads.fetch(image.url, server.download_timeout)


def _embed(server: Any, pk: int | None, batch: _Batch, embedder: features.EmbedderInfo,
           kinds: frozenset[str]) -> None:
    """Fill ``batch.vectors``: stored vectors for inputs given by id, fresh ones for media."""
    stored = [n for n, inp in enumerate(batch.inputs) if features.media_kind(inp.data) is None]
    if stored and pk is None:
        for n in stored:
            batch.fail(n, codes.INPUT_INVALID_ARGUMENT,
                       f"input '{batch.inputs[n].id}' has no media: a built-in model needs "
                       "the image or text itself")
    elif stored:
        ids = [batch.inputs[n].id for n in stored]
        found, matrix = features.input_features(server, pk, ids, embedder.name)
        rows = dict(zip(found, matrix, strict=True))
        for n in stored:
            vector = rows.get(batch.inputs[n].id)
            if vector is None:
                batch.fail(n, codes.INPUT_DOES_NOT_EXIST,
                           f"input '{batch.inputs[n].id}' does not exist or has no "
                           f"embedding by {embedder.name}")
            batch.vectors[n] = vector
    by_kind: dict[str, list[tuple[int, str | bytes]]] = {}
    for n, inp in enumerate(batch.inputs):
        kind = features.media_kind(inp.data)
        if kind is None:
            continue
        if kind not in kinds:
            batch.fail(n, codes.INPUT_INVALID_ARGUMENT,
                       f"input {n} is {kind}; this model takes {' or '.join(sorted(kinds))}")
            continue
        try:
            by_kind.setdefault(kind, []).append((n, _media(server, inp.data, kind)))
        except (downloads.DownloadError, KeyError, OSError) as err:
            batch.fail(n, codes.INPUT_DOWNLOAD_FAILED, f"input {n}: {err}")
    for kind, items in by_kind.items():
        vectors = features.data_features(server, kind, [item for _, item in items],
                                         embedder.name)
        for (n, _), vector in zip(items, vectors, strict=True):
            if vector is None:
                batch.fail(n, codes.INPUT_INVALID_ARGUMENT,
                           f"input {n}: the {kind} could not be read by {embedder.name}")
            batch.vectors[n] = vector


def _model_embedder(server: Any, pk: int | None, model: resources_pb2.Model,
                    head: Head | None) -> tuple[features.EmbedderInfo, frozenset[str]]:
    """The embedder a model's inputs go through, and the media kinds it takes."""
    info = builtin.embedder_of(server, model)
    if info is not None:
        return info, info.kinds
    if head is not None:
        return features.embedder(server, head.embedder), frozenset({head.info.get("media")})
    kind = "text" if "text" in KINDS[model.model_type_id].input_fields else "image"
    return features.embedder_for(server, pk, kind), frozenset({kind})


def _slim(model: resources_pb2.Model) -> resources_pb2.Model:
    out = resources_pb2.Model(id=model.id, name=model.name, app_id=model.app_id,
                              user_id=model.user_id, model_type_id=model.model_type_id)
    out.model_version.id = model.model_version.id
    return out


def predict(server: Any, pk: int | None, model: resources_pb2.Model,
            inputs: Sequence[resources_pb2.Input],
            output_info: resources_pb2.OutputInfo | None = None) -> list[resources_pb2.Output]:
    """One Output per input from ``model`` at its ``model_version`` (see the module doc)."""
    if len(inputs) > MAX_INPUTS:
        raise invalid(f"{len(inputs)} inputs given: at most {MAX_INPUTS} per call")
    if not inputs:
        raise invalid("no inputs given")
    for fn in list(_INTERCEPTORS):
        answered = fn(server, pk, model, inputs, output_info or resources_pb2.OutputInfo())
        if answered is not None:
            return answered
    version = model.model_version
    if version.status.code != codes.MODEL_TRAINED:
        raise RpcFailure(version.status.code or codes.MODEL_UNTRAINED,
                         "Model is not trained",
                         f"version '{version.id}' of model '{model.id}' is not trained "
                         f"({codes.StatusCode.Name(version.status.code or codes.MODEL_UNTRAINED)})")
    embeds = builtin.embedder_of(server, model) is not None or \
        KINDS[model.model_type_id].embeds
    head = None if embeds else load_head(server, pk, model.id, version.id)
    if not embeds and head is None:
        raise RpcFailure(codes.MODEL_PREDICTION_FAILED, "Model has no trained head",
                         f"version '{version.id}' of model '{model.id}' has no head")
    try:
        embedder, kinds = _model_embedder(server, pk, model, head)
    except features.FeatureError as err:
        raise RpcFailure(codes.MODEL_PREDICTION_FAILED, "Model cannot embed its inputs",
                         str(err)) from None
    batch = _Batch(inputs)
    _embed(server, pk, batch, embedder, kinds)
    ok = [n for n in range(len(inputs)) if n not in batch.failures]
    scores = head.scores(np.vstack([batch.vectors[n] for n in ok])) \
        if head is not None and ok else None
    config = output_config(model, output_info)
    names = {c.id: c.name or c.id for c in version.output_info.data.concepts}
    stamp = timestamp(now())
    slim = _slim(model)
    outputs = []
    for n, inp in enumerate(inputs):
        out = resources_pb2.Output(id=new_id(), created_at=stamp, model=slim)
        out.input.id = inp.id
        if n in batch.failures:
            out.status.CopyFrom(batch.failures[n])
        elif head is None:
            out.status.CopyFrom(status())
            vector = batch.vectors[n]
            out.data.embeddings.add(vector=vector.tolist(), num_dimensions=len(vector))
        else:
            out.status.CopyFrom(status())
            out.data.concepts.extend(select(head.concepts, names, scores[ok.index(n)],
                                            config))
        outputs.append(out)
    return outputs


@rpc("PostModelOutputs")
def post_model_outputs(ctx: CallContext, req: service_pb2.PostModelOutputsRequest):
    """Predict with a model version (its latest trained one when ``version_id`` is empty)."""
    from .models import resolve

    version_id = req.version_id or req.model.model_version.id
    pk, model = resolve(ctx, req, req.model_id, version_id)
    if not version_id and pk is not None:
        model = _latest_trained(ctx, pk, model)
    override = req.model.model_version.output_info if req.HasField("model") else None
    outputs = predict(ctx.server, pk, model, list(req.inputs), override)
    failed = sum(o.status.code != codes.SUCCESS for o in outputs)
    overall = status() if not failed else status(
        codes.FAILURE if failed == len(outputs) else codes.MIXED_STATUS)
    return service_pb2.MultiOutputResponse(status=overall, outputs=outputs)


def _latest_trained(ctx: CallContext, pk: int, model: resources_pb2.Model):
    rows = ctx.server.store.read().execute(
        "SELECT proto FROM model_versions WHERE app_pk=? AND model_id=? ORDER BY seq DESC",
        (pk, model.id)).fetchall()
    for (proto,) in rows:
        version = resources_pb2.ModelVersion.FromString(proto)
        if version.status.code == codes.MODEL_TRAINED:
            model.model_version.CopyFrom(version)
            break
    return model
