"""The query-side hybrid pipeline: BM25 and vector retrieval, fused, then a relevance gate."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from haystack import Document, Pipeline
from haystack.components.joiners import DocumentJoiner

from retrieval.config import AGREEMENT_DEPTH, RetrievalConfig
from retrieval.search.embedders import make_embedders
from retrieval.search.relevance import RelevanceFilter

# The DocumentJoiner receives its inputs ordered by *sender name* (Haystack sorts them), not by the
# order of `connect` calls, so weights are laid out by these names.
BM25_RETRIEVER = "bm25_retriever"
EMBEDDING_RETRIEVER = "embedding_retriever"


class EmbedderMismatchError(RuntimeError):
    """The store holds vectors from another embedder than the configured one; re-ingest to fix it."""


def _retrievers(store: Any, config: RetrievalConfig) -> tuple[Any, Any, str]:
    """
    The store's own BM25 and embedding retrievers, and how they report dense similarity.

    `merge` adds scores, so it needs both on one scale: BM25 is then squashed to 0..1 (a logistic
    of score / 8) and cosine mapped to (1 + cos) / 2. Rank-based modes use raw scores.
    """
    from retrieval.stores.embedded.document_store import EmbeddedDocumentStore  # heavy

    scaled = config.join_mode == "merge"
    if isinstance(store, EmbeddedDocumentStore):
        from retrieval.stores.embedded.bm25_retriever import EmbeddedBM25Retriever  # heavy
        from retrieval.stores.embedded.embedding_retriever import EmbeddedEmbeddingRetriever  # heavy

        return (
            EmbeddedBM25Retriever(document_store=store, top_k=config.candidates, scale_score=scaled),
            EmbeddedEmbeddingRetriever(document_store=store, top_k=config.candidates, scale_score=scaled),
            "unit_interval" if scaled else "cosine",
        )
    from haystack_integrations.components.retrievers.elasticsearch import (  # heavy
        ElasticsearchBM25Retriever,
        ElasticsearchEmbeddingRetriever,
    )

    return (
        ElasticsearchBM25Retriever(document_store=store, top_k=config.candidates, scale_score=scaled),
        ElasticsearchEmbeddingRetriever(
            document_store=store,
            top_k=config.candidates,
            num_candidates=max(100, 10 * config.candidates),
            # The alias can be moved to an index built with another embedder while this process runs
            # (`tanya reindex`); this filter makes its query vectors find nothing there instead of
            # nonsense. Every chunk matches it otherwise, so kNN results are unchanged.
            filters={"field": "meta.embedder", "operator": "==", "value": config.embedder},
        ),
        # Elasticsearch always reports a cosine kNN hit as (1 + cosine) / 2.
        "unit_interval",
    )


def check_embedder(store: Any, config: RetrievalConfig) -> None:
    """
    Raises EmbedderMismatchError when stored chunks were embedded by another model than configured.

    Both bundled models produce 384-dimensional vectors, so a mismatch would not fail loudly: it
    would just return nonsense. Counting is one filtered query, done once per pipeline.
    """
    other = store.count_documents_by_filter(
        {"field": "meta.embedder", "operator": "!=", "value": config.embedder}
    )
    if other:
        raise EmbedderMismatchError(
            f"{other} stored chunks were embedded with another model than {config.embedder!r}; "
            "ingest the documents again with the current embedder."
        )


def build_search_pipeline(*, store: Any, config: RetrievalConfig) -> Pipeline:
    """
    Builds the pipeline `search_inputs` feeds.

    Components: `text_embedder`, `bm25_retriever`, `embedding_retriever`, `joiner`, `relevance`.
    Its final output is `relevance.documents`: fused documents best first, or an empty list when
    the question matched nothing relevant. Raises EmbedderMismatchError for a store built with
    another embedder.
    """
    check_embedder(store, config)
    bm25, dense, scale = _retrievers(store, config)
    text_embedder, _ = make_embedders(config.embedder, engine=config.embedding_engine)
    weights = None
    if config.weights is not None and config.join_mode in ("reciprocal_rank_fusion", "merge"):
        by_name = {BM25_RETRIEVER: config.weights[0], EMBEDDING_RETRIEVER: config.weights[1]}
        weights = [by_name[name] for name in sorted(by_name)]

    pipeline = Pipeline()
    pipeline.add_component("text_embedder", text_embedder)
    pipeline.add_component(BM25_RETRIEVER, bm25)
    pipeline.add_component(EMBEDDING_RETRIEVER, dense)
    pipeline.add_component(
        "joiner", DocumentJoiner(join_mode=config.join_mode, weights=weights, top_k=config.top_k)
    )
    pipeline.add_component(
        "relevance",
        RelevanceFilter(
            min_similarity=config.relevance_threshold,
            dense_score_scale=scale,
            agreement_margin=config.relevance_agreement_margin,
            agreement_depth=AGREEMENT_DEPTH,
        ),
    )
    pipeline.connect("text_embedder.embedding", f"{EMBEDDING_RETRIEVER}.query_embedding")
    pipeline.connect(f"{BM25_RETRIEVER}.documents", "joiner.documents")
    pipeline.connect(f"{EMBEDDING_RETRIEVER}.documents", "joiner.documents")
    pipeline.connect("joiner.documents", "relevance.documents")
    pipeline.connect(f"{EMBEDDING_RETRIEVER}.documents", "relevance.dense_documents")
    pipeline.connect(f"{BM25_RETRIEVER}.documents", "relevance.keyword_documents")
    return pipeline


def search_inputs(question: str, top_k: int | None = None) -> dict[str, dict[str, Any]]:
    """
    The `run` data for `build_search_pipeline`'s pipeline.

    :param question: The user's question; the same text goes to BM25 and to the embedder.
    :param top_k: Documents wanted; None keeps the configured `top_k`.
    """
    if not question or not question.strip():
        raise ValueError("question must not be empty")
    data: dict[str, dict[str, Any]] = {
        "text_embedder": {"text": question},
        BM25_RETRIEVER: {"query": question},
    }
    if top_k is not None:
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        data["joiner"] = {"top_k": top_k}
    return data


class HybridSearcher:
    """Runs the hybrid search pipeline for one question at a time."""

    def __init__(self, *, store: Any, config: RetrievalConfig) -> None:
        self.store = store
        self.config = config
        self.pipeline = build_search_pipeline(store=store, config=config)
        self._warm = False

    def warm_up(self) -> None:
        """Loads the query embedder, so that the first question does not wait for it."""
        if not self._warm:
            self.pipeline.warm_up()
            self._warm = True

    def search(self, question: str, top_k: int | None = None) -> list[Document]:
        """Returns up to `top_k` documents best first, or [] when nothing relevant was found."""
        if not question or not question.strip():
            return []
        self.warm_up()
        inputs = search_inputs(question, top_k)
        component = self.pipeline.get_component
        # The pipeline's own steps, called in its order. Pipeline.run deep-copies every input between
        # components (~14 ms a question at 10k chunks, measured); only the joiner changes what it is
        # given (it rescores documents in place), so it alone gets copies.
        embedding = component("text_embedder").run(**inputs["text_embedder"])["embedding"]
        keyword = component(BM25_RETRIEVER).run(**inputs[BM25_RETRIEVER])["documents"]
        dense = component(EMBEDDING_RETRIEVER).run(query_embedding=embedding)["documents"]
        by_sender = {BM25_RETRIEVER: keyword, EMBEDDING_RETRIEVER: dense}
        lists = [[replace(doc) for doc in by_sender[name]] for name in sorted(by_sender)]
        joined = component("joiner").run(documents=lists, **inputs.get("joiner", {}))["documents"]
        relevance = component("relevance")
        return relevance.run(documents=joined, dense_documents=dense, keyword_documents=keyword)["documents"]

    def search_through_pipeline(self, question: str, top_k: int | None = None) -> list[Document]:
        """`search` by `Pipeline.run`, as the answering pipeline runs it; the tests hold the two equal."""
        if not question or not question.strip():
            return []
        self.warm_up()
        return self.pipeline.run(search_inputs(question, top_k))["relevance"]["documents"]
