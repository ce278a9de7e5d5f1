from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from haystack import Document
from haystack.components.joiners import DocumentJoiner

from retrieval.config import RetrievalConfig
from retrieval.ingestion.ingest import Ingestor
from retrieval.search.embedders import make_embedders
from retrieval.search.hybrid import (
    EmbedderMismatchError,
    HybridSearcher,
    build_search_pipeline,
    search_inputs,
)
from retrieval.search.relevance import RelevanceFilter
from retrieval.stores.document_store import open_document_store


@pytest.fixture
def indexed(docs_dir: Path, config: RetrievalConfig):
    store = open_document_store(config)
    Ingestor(store=store, config=config).run([docs_dir])
    return store


def _name(doc: Document) -> str:
    return Path(doc.meta["source"]).name


def test_pipeline_has_the_agreed_components(indexed, config: RetrievalConfig) -> None:
    pipeline = build_search_pipeline(store=indexed, config=config)
    names = {name for name, _ in pipeline.walk()}
    assert names == {"text_embedder", "bm25_retriever", "embedding_retriever", "joiner", "relevance"}
    assert isinstance(pipeline.get_component("joiner"), DocumentJoiner)
    assert isinstance(pipeline.get_component("relevance"), RelevanceFilter)
    out = pipeline.run(search_inputs("How much is a hotel night in Berlin reimbursed?"))
    docs = out["relevance"]["documents"]
    assert _name(docs[0]) == "expenses.md"
    assert all(doc.score is not None for doc in docs)
    assert [d.score for d in docs] == sorted((d.score for d in docs), reverse=True)


def test_search_answers_in_english_and_indonesian(indexed, config: RetrievalConfig) -> None:
    searcher = HybridSearcher(store=indexed, config=config)
    searcher.warm_up()
    assert _name(searcher.search("Which port does the VPN use?")[0]) == "vpn.html"
    assert _name(searcher.search("Berapa hari cuti tahunan yang didapat karyawan?")[0]) == "cuti.txt"
    assert _name(searcher.search("What happens to old laptops?")[0]) == "laptops.pdf"
    assert len(searcher.search("on-call pager", top_k=2)) <= 2


def test_off_topic_questions_return_nothing(indexed, config: RetrievalConfig) -> None:
    searcher = HybridSearcher(store=indexed, config=config)
    assert searcher.search("What is the capital of Mongolia?") == []
    assert searcher.search("   ") == []


def test_an_empty_store_returns_nothing(config: RetrievalConfig) -> None:
    assert HybridSearcher(store=open_document_store(config), config=config).search("anything at all?") == []


def test_search_inputs_shape() -> None:
    assert search_inputs("q") == {"text_embedder": {"text": "q"}, "bm25_retriever": {"query": "q"}}
    assert search_inputs("q", top_k=3)["joiner"] == {"top_k": 3}
    with pytest.raises(ValueError):
        search_inputs("  ")


def test_weights_reach_the_right_retriever(config: RetrievalConfig) -> None:
    # BM25 prefers the note that repeats "password"; the embedder prefers the paraphrase. Each weight
    # must favour its own retriever: the joiner sees its inputs ordered by sender name.
    texts = {
        "keywords": "Reset the router password: password reset steps for the guest wifi router.",
        "meaning": "Forgot your login credentials? The IT desk can unlock your account.",
        "other": "The canteen serves lunch from 11:30 until 14:00.",
    }
    docs = [Document(id=k, content=v, meta={"embedder": config.embedder}) for k, v in texts.items()]
    store = open_document_store(config)
    _, document_embedder = make_embedders(config.embedder)
    store.write_documents(document_embedder.run(documents=docs)["documents"])
    question = "Who unlocks me when my password no longer works?"

    base = replace(config, join_mode="reciprocal_rank_fusion", min_similarity=-1.0)
    probe = build_search_pipeline(store=store, config=base)
    embedding = probe.get_component("text_embedder").run(text=question)["embedding"]
    bm25_top = probe.get_component("bm25_retriever").run(query=question)["documents"][0].id
    dense_top = probe.get_component("embedding_retriever").run(query_embedding=embedding)["documents"][0].id
    assert (bm25_top, dense_top) == ("keywords", "meaning")

    for mode in ("reciprocal_rank_fusion", "merge"):
        bm25_only = HybridSearcher(store=store, config=replace(base, join_mode=mode, weights=(1.0, 0.0)))
        dense_only = HybridSearcher(store=store, config=replace(base, join_mode=mode, weights=(0.0, 1.0)))
        assert bm25_only.pipeline.get_component("joiner").weights == [1.0, 0.0]
        assert bm25_only.search(question)[0].id == "keywords", mode
        assert dense_only.search(question)[0].id == "meaning", mode


def test_a_store_built_with_another_embedder_is_refused(docs_dir: Path, config: RetrievalConfig) -> None:
    minilm = replace(config, embedder="minilm")
    store = open_document_store(minilm)
    Ingestor(store=store, config=minilm).run([docs_dir / "cuti.txt"])
    with pytest.raises(EmbedderMismatchError, match="ingest the documents again"):
        HybridSearcher(store=store, config=config)
    assert HybridSearcher(store=store, config=minilm).search("cuti tahunan")


def test_elasticsearch_stores_get_elasticsearch_retrievers(
    config: RetrievalConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from haystack_integrations.components.retrievers.elasticsearch import (
        ElasticsearchBM25Retriever,
        ElasticsearchEmbeddingRetriever,
    )
    from haystack_integrations.document_stores.elasticsearch import ElasticsearchDocumentStore

    # Apart from the embedder check (a count query), building the pipeline does not touch the server.
    monkeypatch.setattr("retrieval.search.hybrid.check_embedder", lambda store, config: None)
    store = ElasticsearchDocumentStore(
        hosts="http://127.0.0.1:9", index="unused", api_key=None, api_key_id=None
    )
    pipeline = build_search_pipeline(store=store, config=replace(config, location="http://127.0.0.1:9"))
    assert isinstance(pipeline.get_component("bm25_retriever"), ElasticsearchBM25Retriever)
    assert isinstance(pipeline.get_component("embedding_retriever"), ElasticsearchEmbeddingRetriever)
    assert pipeline.get_component("relevance").dense_score_scale == "unit_interval"
    # After an alias switch to another embedder's index, old query vectors must match nothing.
    assert pipeline.get_component("embedding_retriever")._filters == {
        "field": "meta.embedder",
        "operator": "==",
        "value": config.embedder,
    }


def test_merge_mode_scales_scores_and_keeps_the_gate_working(indexed, config: RetrievalConfig) -> None:
    merge = replace(config, join_mode="merge", weights=(0.3, 0.7))
    searcher = HybridSearcher(store=indexed, config=merge)
    assert searcher.pipeline.get_component("relevance").dense_score_scale == "unit_interval"
    hits = searcher.search("Which port does the VPN use?")
    assert _name(hits[0]) == "vpn.html"
    assert all(0.0 <= hit.score <= 1.0 for hit in hits)
    assert searcher.search("What is the capital of Mongolia?") == []


@pytest.mark.parametrize("join_mode", ["merge", "reciprocal_rank_fusion", "distribution_based_rank_fusion"])
def test_search_gives_exactly_what_the_pipeline_gives(
    indexed, config: RetrievalConfig, join_mode: str
) -> None:
    searcher = HybridSearcher(store=indexed, config=replace(config, join_mode=join_mode, min_similarity=0.0))
    questions = [
        ("How much is a hotel night in Berlin reimbursed?", None),
        ("Berapa hari cuti tahunan?", 2),
        ("Which port does the VPN use?", 1),
        ("What is the capital of Mongolia?", None),
    ]
    for question, top_k in questions:
        direct = searcher.search(question, top_k=top_k)
        piped = searcher.search_through_pipeline(question, top_k=top_k)
        assert [d.id for d in direct] == [d.id for d in piped], question
        assert [d.score for d in direct] == pytest.approx([d.score for d in piped]), question
    gated = HybridSearcher(store=indexed, config=config)
    assert (
        gated.search("What is the capital of Mongolia?")
        == gated.search_through_pipeline("What is the capital of Mongolia?")
        == []
    )


def test_the_agreement_rule_sees_what_both_retrievers_found(indexed, config: RetrievalConfig) -> None:
    question = "Which port does the VPN use?"
    run = build_search_pipeline(store=indexed, config=config).run(search_inputs(question))
    best = run["relevance"]["best_similarity"]
    strict = replace(config, min_similarity=best + 0.01, agreement_margin=0.0)
    assert HybridSearcher(store=indexed, config=strict).search(question) == []
    rescued = HybridSearcher(store=indexed, config=replace(strict, agreement_margin=0.02))
    found = rescued.search(question)
    assert found and _name(found[0]) == "vpn.html"
    assert [doc.id for doc in rescued.search_through_pipeline(question)] == [doc.id for doc in found]
    # An off-topic question is not rescued: its keyword and vector hits disagree.
    assert rescued.search("What is the capital of Mongolia?") == []
