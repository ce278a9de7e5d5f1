"""The two retriever components: serialisation and what `run` returns."""

from __future__ import annotations

from pathlib import Path

import pytest
from haystack import Document, Pipeline

from retrieval.stores.embedded.bm25_retriever import EmbeddedBM25Retriever
from retrieval.stores.embedded.document_store import EmbeddedDocumentStore
from retrieval.stores.embedded.embedding_retriever import EmbeddedEmbeddingRetriever


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedDocumentStore:
    store = EmbeddedDocumentStore(path=tmp_path / "s.sqlite3", analyzer="plain", languages=("en",))
    store.write_documents(
        [
            Document(id="1", content="hotel costs are reimbursed", embedding=[1.0, 0.0], meta={"lang": "en"}),
            Document(id="2", content="biaya hotel diganti", embedding=[0.9, 0.1], meta={"lang": "id"}),
            Document(id="3", content="the pager rotates weekly", embedding=[0.0, 1.0], meta={"lang": "en"}),
        ]
    )
    return store


@pytest.mark.parametrize("retriever_class", [EmbeddedBM25Retriever, EmbeddedEmbeddingRetriever])
def test_serialises_with_its_store_settings(store: EmbeddedDocumentStore, retriever_class: type) -> None:
    retriever = retriever_class(
        document_store=store, top_k=2, filters={"field": "meta.lang", "operator": "==", "value": "en"}
    )
    data = retriever.to_dict()
    assert data["init_parameters"]["document_store"]["init_parameters"] == {
        "path": str(store.path),
        "analyzer": "plain",
        "languages": ["en"],
    }
    rebuilt = retriever_class.from_dict(data)
    assert rebuilt.to_dict() == data
    assert rebuilt.document_store.count_documents() == 3


def test_bm25_run_applies_filters_and_top_k(store: EmbeddedDocumentStore) -> None:
    retriever = EmbeddedBM25Retriever(document_store=store, top_k=5)
    assert [d.id for d in retriever.run(query="hotel")["documents"]] in (["1", "2"], ["2", "1"])
    english = {"field": "meta.lang", "operator": "==", "value": "en"}
    assert [d.id for d in retriever.run(query="hotel", filters=english)["documents"]] == ["1"]
    assert len(retriever.run(query="hotel", top_k=1)["documents"]) == 1
    assert retriever.run(query="?!")["documents"] == []


def test_scaled_bm25_scores_lie_between_zero_and_one(store: EmbeddedDocumentStore) -> None:
    documents = EmbeddedBM25Retriever(document_store=store, scale_score=True).run(query="hotel pager")[
        "documents"
    ]
    assert documents and all(0.0 < d.score < 1.0 for d in documents)


def test_embedding_run_inside_a_pipeline(store: EmbeddedDocumentStore) -> None:
    pipeline = Pipeline()
    pipeline.add_component("retriever", EmbeddedEmbeddingRetriever(document_store=store, top_k=2))
    pipeline.warm_up()
    assert len(store._vectors) == 3  # read at warm-up, not by the first question
    documents = pipeline.run({"retriever": {"query_embedding": [1.0, 0.05]}})["retriever"]["documents"]
    assert [d.id for d in documents] == ["1", "2"]
    assert documents[0].score > documents[1].score and documents[0].embedding is None


def test_a_retriever_needs_the_embedded_store_and_a_positive_top_k(store: EmbeddedDocumentStore) -> None:
    with pytest.raises(ValueError, match="EmbeddedDocumentStore"):
        EmbeddedBM25Retriever(document_store=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="top_k"):
        EmbeddedEmbeddingRetriever(document_store=store, top_k=0)
