"""The built-in embedders, registered through the same plugin hook a third party uses.

- ``wordllama`` (text): WordLlama's 256-d static token embeddings (MIT), whose weights and
  tokenizer ship inside the ``wordllama`` wheel; loaded with downloads disabled from the
  package's own folder, never from the network or a cache.
- ``image-features`` (image): :func:`~.image_features.image_features`, colour, layout,
  DCT and edge features of the picture itself (near-duplicates and look-alikes only).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from ...embedder import Embedder
from ...hookspecs import hookimpl

__all__ = ["ImageFeatureEmbedder", "WordLlamaEmbedder"]


class WordLlamaEmbedder(Embedder):
    """Text: WordLlama l2_supercat, 256 dimensions, from the wheel (no download)."""

    name = "wordllama"
    kinds = frozenset({"text"})
    dim = 256
    description = "text: WordLlama 256-d static embeddings shipped in its wheel"

    _model: Any = None
    _lock = threading.Lock()

    @classmethod
    def model(cls) -> Any:
        """The loaded WordLlama model (loaded once per process)."""
        with cls._lock:
            if cls._model is None:
                from pathlib import Path

                import wordllama

                # WordLlama looks for its tokenizer in <package>/tokenizer/ but ships it in
                # <package>/tokenizers/, which is where it looks in a cache_dir: the package
                # folder as cache_dir finds both files there, and nothing is downloaded.
                cls._model = wordllama.WordLlama.load(
                    cache_dir=Path(wordllama.__file__).parent, disable_download=True)
            return cls._model

    def embed(self, kind: str, items: Sequence[Any]) -> Sequence[Any]:
        """One 256-d vector per text (an empty text gives a zero vector)."""
        return self.model().embed([str(t) for t in items], norm=True)


class ImageFeatureEmbedder(Embedder):
    """Images: colour histogram, colour layout, DCT block and edge orientations."""

    name = "image-features"
    kinds = frozenset({"image"})
    description = "image: colour, layout, DCT and edge features (near-duplicates, look-alikes)"

    dim = 287  # image_features.DIM, kept literal so that loading plugins stays light

    def embed(self, kind: str, items: Sequence[Any]) -> Sequence[Any]:
        """One feature vector per image; None for bytes that are not an image."""
        from .image_features import image_features

        out = []
        for data in items:
            try:
                out.append(image_features(data))
            except (OSError, ValueError, SyntaxError):  # PIL's ways of saying "not an image"
                out.append(None)
        return out


@hookimpl
def register_embedders(register: Callable[[type[Embedder]], None]) -> None:
    register(WordLlamaEmbedder)
    register(ImageFeatureEmbedder)
