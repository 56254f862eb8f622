"""The embedder contract: turn media into vectors that the local server searches and trains on.

An :class:`Embedder` subclass is registered by a plugin through the ``register_embedders``
hook (:mod:`clarifai_connect.hookspecs`), like readers and writers. The local server builds
one instance per server on first use and calls :meth:`Embedder.embed` with batches of one
media kind, from a background thread at ingest and from request threads for queries.

Vectors may be any float array-like of shape ``(len(items), dim)``; the server stores
them L2-normalized as float32, so an embedder need not normalize. One embedder may cover
several kinds (a CLIP-like model embedding both ``image`` and ``text`` into one space):
inputs of those kinds then share one vector index, and a text query finds images.

Which embedder embeds which kind is decided per server (``LocalServer(embedders=…)``) and
per app: an app whose base workflow (``default_workflow.id``) is the name of a registered
embedder uses that one for the kinds it covers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = ["MEDIA_KINDS", "Embedder"]

MEDIA_KINDS = ("image", "video", "audio", "text")


class Embedder(ABC):
    """Turns media of the :attr:`kinds` it covers into fixed-length vectors.

    Subclasses set :attr:`name` (unique among registered embedders), :attr:`kinds` and
    :attr:`dim`, and implement :meth:`embed`. The constructor takes no argument; load
    weights lazily or in ``__init__`` (it runs once per server). ``embed`` must be
    thread-safe and deterministic: the same item gives the same vector every time.
    """

    name: ClassVar[str] = ""
    kinds: ClassVar[frozenset[str]] = frozenset()
    dim: ClassVar[int] = 0
    description: ClassVar[str] = ""

    @abstractmethod
    def embed(self, kind: str, items: Sequence[Any]) -> Sequence[Any]:
        """Vectors for ``items`` of media ``kind`` (one of :attr:`kinds`), one row per item.

        Text items are ``str``; image, video and audio items are the media's ``bytes``.
        A row may be ``None`` for an item this embedder cannot read (a corrupt image):
        that input then has no embedding, and the others of the batch are kept.
        """
