"""The embedded document store: one SQLite file holding chunks, their vectors and a BM25 index."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document, default_from_dict, default_to_dict
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.errors import FilterError
from haystack.utils import expit
from haystack.utils.filters import document_matches_filter

from retrieval.stores.embedded import schema
from retrieval.stores.embedded.analysis import TextAnalyzer
from retrieval.stores.embedded.filters import NotTranslatable, filter_to_sql
from retrieval.stores.embedded.vectors import VectorIndex
from retrieval.stores.errors import StoreUnavailableError

logger = logging.getLogger(__name__)

# Haystack's in-memory store squashes BM25 scores the same way, so fusion weights carry over.
BM25_SCALING_FACTOR = 8
_COLUMNS = "rowid, id, content, meta, embedding, extra"


class EmbeddedDocumentStore:
    """
    A Haystack document store in one SQLite file under `TANYA_HOME`.

    * BM25 is SQLite's FTS5 index over the analysed words of each chunk (Okapi BM25, k1 = 1.2,
      b = 0.75, the values Elasticsearch uses), so keyword search reads only the postings of the
      question's terms.
    * Vectors are stored with their chunk and searched exactly in memory (`VectorIndex`).
    * Every write is one transaction over chunk, vector and terms: a process killed mid-write
      leaves the previous state, and the two indexes cannot disagree. WAL mode lets searches run
      while another process ingests; they see its work when each batch commits.
    """

    def __init__(
        self,
        *,
        path: str | Path,
        analyzer: str = "stemmed",
        languages: Sequence[str] = ("en", "id", "ms"),
    ) -> None:
        """
        :param path: The SQLite file; created with its folder when missing.
        :param analyzer: How words become BM25 terms (see `TextAnalyzer`).
        :param languages: Languages a chunk or question may be in, for stemming.
        """
        self.path = Path(path)
        self.analyzer = TextAnalyzer(name=analyzer, languages=tuple(languages))
        self._local = threading.local()
        self._vectors = VectorIndex()
        self._write_lock = threading.Lock()
        self._open()

    # ------------------------------------------------------------------ protocol

    def to_dict(self) -> dict[str, Any]:
        """Serialises the store's settings (not its documents)."""
        return default_to_dict(
            self,
            path=str(self.path),
            analyzer=self.analyzer.name,
            languages=list(self.analyzer.languages),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbeddedDocumentStore:
        """Opens the store that `to_dict` described."""
        return default_from_dict(cls, data)

    def count_documents(self) -> int:
        """Number of stored chunks."""
        return int(self._connection().execute("SELECT count(*) FROM chunks").fetchone()[0])

    def count_documents_by_filter(self, filters: dict[str, Any]) -> int:
        """Number of chunks that match `filters`."""
        try:
            where, params = filter_to_sql(filters)
        except NotTranslatable:
            return len(self.filter_documents(filters))
        sql = f"SELECT count(*) FROM chunks WHERE {where}"
        return int(self._connection().execute(sql, params).fetchone()[0])

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """The chunks that match `filters` (all when None), embeddings included."""
        if not filters:
            return list(self._select("1", []))
        if "operator" not in filters and "conditions" not in filters:
            raise FilterError(
                "Invalid filter syntax. See https://docs.haystack.deepset.ai/docs/metadata-filtering"
            )
        try:
            where, params = filter_to_sql(filters)
        except NotTranslatable:
            return [doc for doc in self._select("1", []) if document_matches_filter(filters, doc)]
        return list(self._select(where, params))

    def write_documents(
        self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE
    ) -> int:
        """Writes `documents` in one transaction; returns how many were written."""
        if not isinstance(documents, list) or any(not isinstance(d, Document) for d in documents):
            raise ValueError("Please provide a list of Documents.")
        if policy == DuplicatePolicy.NONE:
            policy = DuplicatePolicy.FAIL
        unique: dict[str, Document] = {}
        for document in documents:
            unique[document.id] = document  # the last of equal ids wins, as in one overwrite after another
        rows = [self._row(document) for document in unique.values()]
        written = 0
        with self._transaction() as connection:
            for row in rows:
                existing = connection.execute("SELECT rowid FROM chunks WHERE id = ?", (row[0],)).fetchone()
                if existing is not None:
                    if policy == DuplicatePolicy.SKIP:
                        continue
                    if policy == DuplicatePolicy.FAIL:
                        raise DuplicateDocumentError(f"ID '{row[0]}' already exists in the document store.")
                    schema.delete_rows(connection, [existing[0]])
                schema.insert_row(connection, row)
                written += 1
            if written:
                schema.bump_generation(connection)
        return written

    def delete_documents(self, document_ids: list[str]) -> None:
        """Deletes the chunks with these ids; unknown ids are ignored."""
        if not document_ids:
            return
        with self._transaction() as connection:
            rowids = schema.rowids_of(connection, list(document_ids))
            if rowids:
                schema.delete_rows(connection, rowids)
                schema.bump_generation(connection)

    # ------------------------------------------------------------------ retrieval

    def bm25_retrieval(
        self, query: str, *, top_k: int = 10, filters: dict[str, Any] | None = None, scale_score: bool = False
    ) -> list[Document]:
        """The `top_k` chunks with the best BM25 score for `query`, best first."""
        terms = list(dict.fromkeys(self.analyzer.terms(query)))
        if not terms or top_k < 1:
            return []
        terms = schema.informative_terms(self._connection(), terms)
        match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
        sql = "SELECT rowid, -bm25(chunk_terms) AS score FROM chunk_terms WHERE chunk_terms MATCH ?"
        params: list[Any] = [match]
        allowed = self._allowed_rowids(filters)
        if allowed is not None:
            if not allowed:
                return []
            sql += f" AND rowid IN ({','.join('?' * len(allowed))})"
            params.extend(sorted(allowed))
        sql += " ORDER BY bm25(chunk_terms), rowid LIMIT ?"
        params.append(top_k)
        hits = [(int(r), float(s)) for r, s in self._connection().execute(sql, params)]
        if scale_score:
            hits = [(rowid, float(expit(score / BM25_SCALING_FACTOR))) for rowid, score in hits]
        return self._documents_for(hits, with_embedding=False)

    def embedding_retrieval(
        self,
        query_embedding: list[float],
        *,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        scale_score: bool = False,
        return_embedding: bool = False,
    ) -> list[Document]:
        """The `top_k` chunks whose vectors are closest (cosine) to `query_embedding`, best first."""
        if not query_embedding:
            raise ValueError("query_embedding should be a non-empty list of floats.")
        connection = self._connection()
        allowed = self._allowed_rowids(filters)
        if allowed is not None and not allowed:
            return []
        generation = schema.generation(connection)
        hits = self._vectors.search(connection, generation, np.asarray(query_embedding), top_k, allowed)
        if scale_score:
            hits = [(rowid, (score + 1) / 2) for rowid, score in hits]
        return self._documents_for(hits, with_embedding=return_embedding)

    # ------------------------------------------------------------------ upkeep

    @property
    def generation(self) -> int:
        """Moves on with every committed write, by any process."""
        return schema.generation(self._connection())

    def load_vectors(self) -> int:
        """
        Reads the vectors into memory now rather than at the first search (about 2 s per 100k
        chunks); returns how many there are. The embedding retriever's `warm_up` calls it.
        """
        connection = self._connection()
        return self._vectors.load(connection, schema.generation(connection))

    def checkpoint(self) -> None:
        """Folds the write-ahead log into the main file (before copying or renaming it)."""
        self._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Closes this thread's connection; other threads' close when they end."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    shutdown = close

    # ------------------------------------------------------------------ internals

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._transaction() as connection:
                schema.create(connection)
                repaired = schema.reconcile(connection, self.analyzer)
        except sqlite3.DatabaseError as error:
            raise StoreUnavailableError(
                f"Embedded document store {self.path} could not be read ({error}). Move it aside and run "
                "`tanya ingest` on your documents again to rebuild it."
            ) from error
        if repaired:
            logger.warning("Embedded document store %s: %s", self.path, repaired)

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = schema.connect(self.path)
            self._local.connection = connection
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        with self._write_lock:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _row(self, document: Document) -> tuple[Any, ...]:
        embedding = None
        if document.embedding is not None:
            embedding = np.asarray(document.embedding, dtype="<f4").tobytes()
        extra = {}
        if document.blob is not None:
            extra["blob"] = document.blob.to_dict()
        if document.sparse_embedding is not None:
            extra["sparse_embedding"] = document.sparse_embedding.to_dict()
        meta = json.dumps(document.meta, ensure_ascii=False, default=str)
        terms = schema.index_terms(self.analyzer, document.content, meta)
        return document.id, document.content, meta, embedding, json.dumps(extra) if extra else None, terms

    def _select(self, where: str, params: list[Any]) -> Iterator[Document]:
        sql = f"SELECT {_COLUMNS} FROM chunks WHERE {where} ORDER BY rowid"
        for row in self._connection().execute(sql, params):
            yield _document(row, with_embedding=True)

    def _allowed_rowids(self, filters: dict[str, Any] | None) -> set[int] | None:
        if not filters:
            return None
        try:
            where, params = filter_to_sql(filters)
        except NotTranslatable:
            return {
                int(row[0])
                for row in self._connection().execute(f"SELECT {_COLUMNS} FROM chunks")
                if document_matches_filter(filters, _document(row, with_embedding=False))
            }
        return {
            int(row[0])
            for row in self._connection().execute(f"SELECT rowid FROM chunks WHERE {where}", params)
        }

    def _documents_for(self, hits: list[tuple[int, float]], *, with_embedding: bool) -> list[Document]:
        if not hits:
            return []
        marks = ",".join("?" * len(hits))
        rows = self._connection().execute(
            f"SELECT {_COLUMNS} FROM chunks WHERE rowid IN ({marks})", [rowid for rowid, _ in hits]
        )
        by_rowid = {int(row[0]): row for row in rows}
        documents = []
        for rowid, score in hits:
            row = by_rowid.get(rowid)
            if row is None:  # deleted by another process since the index was read
                continue
            documents.append(_document(row, with_embedding=with_embedding, score=score))
        return documents


def _document(row: tuple[Any, ...], *, with_embedding: bool, score: float | None = None) -> Document:
    _, doc_id, content, meta, embedding, extra = row
    fields: dict[str, Any] = {"id": doc_id, "content": content, "meta": json.loads(meta), "score": score}
    if with_embedding and embedding is not None:
        fields["embedding"] = np.frombuffer(embedding, dtype="<f4").astype(float).tolist()
    if extra:
        fields.update(json.loads(extra))
    return Document.from_dict(fields) if extra else Document(**fields)
