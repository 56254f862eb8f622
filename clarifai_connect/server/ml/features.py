"""The one door from models to embeddings: which embedder an app's head uses, the vectors of
stored inputs, and the vectors of new data.

Training, prediction and the built-in models call only these functions; the embedders, the
background embedding of inputs and the vector store belong to :mod:`.embeddings` (the search
side). Keeping the coupling here means a change there is absorbed in one file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from clarifai_grpc.grpc.api import resources_pb2


@dataclass(frozen=True)
class EmbedderInfo:
    """What a model needs to know of an embedder."""

    name: str
    kind: str  # "image" or "text": the media it embeds
    dim: int
    description: str = ""


class FeatureError(ValueError):
    """Data that cannot be embedded (no embedder for its kind, unreadable media …)."""


def embedders() -> list[EmbedderInfo]:
    """The embedders the server has, one per media kind it embeds."""
    try:
        from . import embeddings
    except ImportError:  # the embeddings side has not landed: no built-in models yet
        return []

    return [EmbedderInfo(e.name, e.kind, e.dim, getattr(e, "description", ""))
            for e in embeddings.embedders()]


def embedder_for(kind: str) -> EmbedderInfo:
    """The embedder of media ``kind`` ('image' or 'text')."""
    for info in embedders():
        if info.kind == kind:
            return info
    raise FeatureError(f"the server has no {kind} embedder")


def media_kind(data: resources_pb2.Data) -> str | None:
    """'image' or 'text' for the media a Data holds (None: neither)."""
    if data.HasField("image"):
        return "image"
    if data.HasField("text"):
        return "text"
    return None


def input_features(server: Any, pk: int, input_ids: Sequence[str], embedder: str,
                   timeout: float = 600.0) -> tuple[list[str], np.ndarray]:
    """(ids found, vectors) of stored inputs by ``embedder``, waiting for pending ones.

    Inputs that have no vector by that embedder (another media kind, failed media) are
    left out: the ids say which rows came back.
    """
    from . import embeddings

    embeddings.wait_for(server, pk, list(input_ids), timeout=timeout)
    found = embeddings.embeddings_for(server, pk, list(input_ids), embedder=embedder)
    ids = [i for i in input_ids if i in found]
    if not ids:
        return [], np.zeros((0, 0), dtype=np.float32)
    return ids, np.vstack([np.asarray(found[i], dtype=np.float32) for i in ids])


def data_features(server: Any, datas: Sequence[resources_pb2.Data],
                  embedder: str) -> np.ndarray:
    """Vectors of new data (bytes, URLs or text) by ``embedder``, one row per Data."""
    from . import embeddings

    try:
        vectors = embeddings.embed(server, list(datas), embedder=embedder)
    except (ValueError, OSError) as err:
        raise FeatureError(str(err)) from None
    return np.asarray(vectors, dtype=np.float32).reshape(len(datas), -1)
