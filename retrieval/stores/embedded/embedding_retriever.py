"""Vector retrieval from the embedded store's in-memory matrix."""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_to_dict

from retrieval.stores.embedded.document_store import EmbeddedDocumentStore
from retrieval.stores.embedded.retriever_support import check_arguments, retriever_from_dict


@component
class EmbeddedEmbeddingRetriever:
    """Returns the chunks whose vectors are closest (cosine) to a query vector, best first."""

    def __init__(
        self,
        *,
        document_store: EmbeddedDocumentStore,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        scale_score: bool = False,
        return_embedding: bool = False,
    ) -> None:
        """
        :param document_store: The store to search.
        :param filters: Metadata filters every result must match.
        :param top_k: Chunks returned.
        :param scale_score: Report (1 + cosine) / 2 instead of the cosine.
        :param return_embedding: Include each chunk's vector in the results.
        """
        check_arguments(document_store, top_k)
        self.document_store = document_store
        self.filters = filters
        self.top_k = top_k
        self.scale_score = scale_score
        self.return_embedding = return_embedding

    def warm_up(self) -> None:
        """Reads the store's vectors into memory, so the first question does not wait for them."""
        self.document_store.load_vectors()

    def to_dict(self) -> dict[str, Any]:
        """Serialises the component with its store's settings."""
        return default_to_dict(
            self,
            document_store=self.document_store.to_dict(),
            filters=self.filters,
            top_k=self.top_k,
            scale_score=self.scale_score,
            return_embedding=self.return_embedding,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbeddedEmbeddingRetriever:
        """Rebuilds the component and opens its store."""
        return retriever_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self,
        query_embedding: list[float],
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
    ) -> dict[str, list[Document]]:
        """
        :param query_embedding: The question's vector, from the same embedder as the chunks'.
        :param filters: Replace the component's filters for this call.
        :param top_k: Replaces the component's `top_k` for this call.
        :returns: `documents`, best first, each with its `score`.
        """
        documents = self.document_store.embedding_retrieval(
            query_embedding,
            top_k=top_k or self.top_k,
            filters=filters if filters is not None else self.filters,
            scale_score=self.scale_score,
            return_embedding=self.return_embedding,
        )
        return {"documents": documents}
