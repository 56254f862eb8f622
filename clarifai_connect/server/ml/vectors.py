"""The in-memory vector index of one app and one embedder: exact search with numpy.

Rows are L2-normalized float32 vectors in one growing matrix (capacity doubles), with an
id → row map. Removing an input moves the last row into its place, so the matrix stays
dense and a search is one matrix-vector product over the rows asked for. The index is
rebuilt from the ``embeddings`` table when first used and kept up to date on add/delete
by :class:`~.embeddings.EmbeddingService`; the table is what persists.

Scores for unit vectors: cosine ``(1 + cos) / 2`` and euclidean ``1 - d / 2`` (d ∈ [0, 2]),
both in [0, 1] with 1 the most alike, and ranking the same for unit vectors.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["COSINE", "EUCLIDEAN", "VectorIndex", "scores", "unit_rows"]

COSINE = "cosine"
EUCLIDEAN = "euclidean"


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` (n × d) as float32 rows of length 1 (zero rows stay zero)."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 1e-12, norms, 1.0)


def scores(similarity: np.ndarray, metric: str) -> np.ndarray:
    """Dot products of unit vectors → scores in [0, 1] under ``metric``."""
    similarity = np.clip(similarity, -1.0, 1.0)
    if metric == EUCLIDEAN:
        return 1.0 - np.sqrt(np.maximum(2.0 - 2.0 * similarity, 0.0)) / 2.0
    return (1.0 + similarity) / 2.0


class VectorIndex:
    """Exact nearest-neighbour search over the vectors of one app and embedder."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._matrix = np.zeros((0, dim), dtype=np.float32)
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, input_id: object) -> bool:
        return input_id in self._rows

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add (or replace) the vectors of ``ids``; ``vectors`` is len(ids) × dim."""
        vectors = unit_rows(vectors)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected {len(ids)} × {self.dim} vectors, got {vectors.shape}")
        with self._lock:
            rows = []
            for input_id in ids:
                row = self._rows.get(input_id)
                if row is None:
                    row = self._rows[input_id] = len(self._ids)
                    self._ids.append(input_id)
                rows.append(row)
            if len(self._ids) > len(self._matrix):
                grown = np.zeros((max(64, 2 * len(self._ids)), self.dim), dtype=np.float32)
                grown[:len(self._matrix)] = self._matrix
                self._matrix = grown
            self._matrix[rows] = vectors  # a repeated id: the last of its vectors wins

    def remove(self, ids: Iterable[str]) -> None:
        """Forget the vectors of ``ids`` (unknown ids are ignored)."""
        with self._lock:
            for input_id in ids:
                row = self._rows.pop(input_id, None)
                if row is None:
                    continue
                last = len(self._ids) - 1
                if row != last:
                    moved = self._ids[last]
                    self._ids[row] = moved
                    self._rows[moved] = row
                    self._matrix[row] = self._matrix[last]
                self._ids.pop()

    def vectors(self, ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The ids of ``ids`` that have a vector (in that order) and their vectors (a copy)."""
        with self._lock:
            found = [i for i in ids if i in self._rows]
            rows = [self._rows[i] for i in found]
            return found, self._matrix[rows].copy()

    def search(self, query: np.ndarray, k: int, metric: str = COSINE,
               among: Iterable[str] | None = None) -> list[tuple[str, float]]:
        """The ``k`` best (id, score) pairs for ``query``, best first.

        ``among`` restricts the search to those ids (the survivors of a filter); ids
        without a vector are left out. Ties keep index order, so results are stable.
        """
        query = unit_rows(query)[0]
        with self._lock:
            count = len(self._ids)
            if among is None:
                rows = None
                sims = self._matrix[:count] @ query
            else:
                rows = np.fromiter((r for r in map(self._rows.get, among) if r is not None),
                                   dtype=np.int64)
                sims = self._matrix[rows] @ query
            k = min(k, len(sims))
            if k <= 0:
                return []
            top = (np.argpartition(-sims, k - 1)[:k] if k < len(sims)
                   else np.arange(len(sims)))
            top = top[np.lexsort((top, -sims[top]))]
            picked = top if rows is None else rows[top]
            names = [self._ids[r] for r in picked]
        return list(zip(names, scores(sims[top], metric).tolist(), strict=False))
