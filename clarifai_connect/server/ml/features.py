"""The one door from models to embeddings: which embedder an app's head uses, the vectors of
stored inputs, and the vectors of new data.

Training, prediction and the built-in models call only these functions; the embedders, the
background embedding of inputs and the vector store belong to :mod:`.embeddings`
(``server.embeddings``, the search side). Vectors are L2-normalized float32 rows both ways,
so a head trained on stored inputs scores new data on the same scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from clarifai_grpc.grpc.api import resources_pb2

from .vectors import unit_rows


@dataclass(frozen=True)
class EmbedderInfo:
    """What a model needs to know of a registered embedder."""

    name: str
    kinds: frozenset[str]  # the media kinds it embeds ("image", "text" …)
    dim: int
    description: str = ""


class FeatureError(ValueError):
    """Data that cannot be embedded (no embedder for its kind, unreadable media …)."""


def _registry(server: Any) -> Any:
    service = getattr(server, "embeddings", None)
    if service is not None:
        return service.registry
    from ...plugins import get_registry  # no server at hand: the process's plugins

    return get_registry()


def embedders(server: Any = None) -> list[EmbedderInfo]:
    """Every embedder registered with the server's embedding service (with no server, with
    the process's plugin registry), by name."""
    return [EmbedderInfo(name, frozenset(reg.cls.kinds), int(reg.cls.dim),
                         reg.cls.description or "")
            for name, reg in sorted(_registry(server).embedders.items())]


def default_embedders(server: Any = None) -> dict[str, str]:
    """The embedder name the server uses for each media kind by default."""
    service = getattr(server, "embeddings", None)
    if service is not None:
        return dict(service.defaults)
    from .embeddings import DEFAULT_EMBEDDERS

    return dict(DEFAULT_EMBEDDERS)


def embedder(server: Any, name: str) -> EmbedderInfo:
    """The registered embedder ``name``."""
    for info in embedders(server):
        if info.name == name:
            return info
    raise FeatureError(f"embedder '{name}' is not registered with this server")


def embedder_for(server: Any, pk: int, kind: str) -> EmbedderInfo:
    """The embedder that embeds ``kind`` media in app ``pk``."""
    name = server.embeddings.embedder_name(pk, kind)
    if name is None:
        raise FeatureError(f"this app embeds no {kind} (no embedder is configured for it)")
    return embedder(server, name)


def media_kind(data: resources_pb2.Data) -> str | None:
    """'image' or 'text' for the media a Data holds (None: neither)."""
    if data.HasField("image"):
        return "image"
    if data.HasField("text"):
        return "text"
    return None


def input_features(server: Any, pk: int, input_ids: Sequence[str], name: str,
                   timeout: float = 600.0) -> tuple[list[str], np.ndarray]:
    """(ids found, vectors) of stored inputs by embedder ``name``, after the app's queued
    inputs are embedded. Inputs without such a vector (another media kind, unreadable
    media) are left out: the ids say which rows came back."""
    service = server.embeddings
    if not service.wait(pk, timeout=timeout):
        raise FeatureError(f"inputs still waiting for embeddings after {timeout:g}s")
    return service.vectors(pk, list(input_ids), embedder=name)


def data_features(server: Any, kind: str, items: Sequence[str | bytes],
                  name: str) -> list[np.ndarray | None]:
    """Unit vectors of new items (``str`` text, media ``bytes``) of media ``kind`` by
    embedder ``name``; None for an item the embedder cannot read."""
    rows = server.embeddings.embedder(name).embed(kind, list(items))
    return [None if row is None else unit_rows(np.asarray(row, dtype=np.float32)[None])[0]
            for row in rows]
