"""Keyword retrieval from the embedded store's FTS5 index."""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_to_dict

from retrieval.stores.embedded.document_store import EmbeddedDocumentStore
from retrieval.stores.embedded.retriever_support import check_arguments, retriever_from_dict


@component
class EmbeddedBM25Retriever:
    """Returns the chunks with the best BM25 score for a query, best first."""

    def __init__(
        self,
        *,
        document_store: EmbeddedDocumentStore,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        scale_score: bool = False,
    ) -> None:
        """
        :param document_store: The store to search.
        :param filters: Metadata filters every result must match.
        :param top_k: Chunks returned.
        :param scale_score: Squash scores into 0..1 (as Haystack's in-memory store does), for fusion by adding.
        """
        check_arguments(document_store, top_k)
        self.document_store = document_store
        self.filters = filters
        self.top_k = top_k
        self.scale_score = scale_score

    def warm_up(self) -> None:
        """Loads the store's language identifier, so the first question does not wait for it."""
        self.document_store.analyzer.warm_up()

    def to_dict(self) -> dict[str, Any]:
        """Serialises the component with its store's settings."""
        return default_to_dict(
            self,
            document_store=self.document_store.to_dict(),
            filters=self.filters,
            top_k=self.top_k,
            scale_score=self.scale_score,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbeddedBM25Retriever:
        """Rebuilds the component and opens its store."""
        return retriever_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """
        :param query: The question, analysed like the chunks were.
        :param filters: Replace the component's filters for this call.
        :param top_k: Replaces the component's `top_k` for this call.
        :returns: `documents`, best first, each with its `score`.
        """
        documents = self.document_store.bm25_retrieval(
            query,
            top_k=top_k or self.top_k,
            filters=filters if filters is not None else self.filters,
            scale_score=self.scale_score,
        )
        return {"documents": documents}
