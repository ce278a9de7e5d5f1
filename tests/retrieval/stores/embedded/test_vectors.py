"""The in-memory matrix follows the table without re-reading it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from haystack import Document

from retrieval.stores.embedded import vectors
from retrieval.stores.embedded.document_store import EmbeddedDocumentStore


def _docs(start: int, stop: int) -> list[Document]:
    rng = np.random.default_rng(start)
    return [
        Document(id=f"v{i}", content=f"text {i}", embedding=rng.normal(size=8).tolist())
        for i in range(start, stop)
    ]


def test_only_new_vectors_are_read_after_a_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = EmbeddedDocumentStore(path=tmp_path / "s.sqlite3")
    store.write_documents(_docs(0, 300))
    reads: list[int] = []
    real = vectors._read_vectors

    def counting(connection, rowids):  # type: ignore[no-untyped-def]
        reads.append(len(rowids))
        return real(connection, rowids)

    monkeypatch.setattr(vectors, "_read_vectors", counting)
    query = np.ones(8).tolist()
    assert store.load_vectors() == 300  # what the retriever's warm_up does
    store.embedding_retrieval(query_embedding=query, top_k=3)
    store.embedding_retrieval(query_embedding=query, top_k=3)
    assert reads == [300]  # loaded once, then reused while nothing changes

    store.write_documents(_docs(300, 302))
    store.delete_documents(["v5", "v7"])
    hits = store.embedding_retrieval(query_embedding=query, top_k=400)
    assert reads == [300, 2]
    assert len(hits) == 300 and {"v5", "v7"}.isdisjoint(d.id for d in hits)


def test_exact_cosine_ranking_matches_numpy(tmp_path: Path) -> None:
    store = EmbeddedDocumentStore(path=tmp_path / "s.sqlite3")
    docs = _docs(0, 200)
    store.write_documents(docs)
    query = np.random.default_rng(42).normal(size=8)
    matrix = np.array([d.embedding for d in docs])
    cosine = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
    expected = [docs[i].id for i in np.argsort(-cosine)[:10]]
    hits = store.embedding_retrieval(query_embedding=query.tolist(), top_k=10)
    assert [d.id for d in hits] == expected
    assert hits[0].score == pytest.approx(float(cosine.max()), abs=1e-5)
    scaled = store.embedding_retrieval(query_embedding=query.tolist(), top_k=1, scale_score=True)
    assert scaled[0].score == pytest.approx((1 + float(cosine.max())) / 2, abs=1e-5)


def test_a_filter_narrows_vector_search(tmp_path: Path) -> None:
    store = EmbeddedDocumentStore(path=tmp_path / "s.sqlite3")
    docs = _docs(0, 50)
    for i, doc in enumerate(docs):
        doc.meta["source"] = "/a.md" if i % 2 else "/b.md"
    store.write_documents(docs)
    filters = {"field": "meta.source", "operator": "==", "value": "/a.md"}
    hits = store.embedding_retrieval(query_embedding=np.ones(8).tolist(), top_k=5, filters=filters)
    assert len(hits) == 5 and all(d.meta["source"] == "/a.md" for d in hits)
    assert store.bm25_retrieval(query="text", top_k=30, filters=filters) and all(
        d.meta["source"] == "/a.md" for d in store.bm25_retrieval(query="text", top_k=30, filters=filters)
    )
