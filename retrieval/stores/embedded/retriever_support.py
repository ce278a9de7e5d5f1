"""What the two embedded retrievers share: checking their arguments and reopening their store."""

from __future__ import annotations

from typing import Any, TypeVar

from haystack import default_from_dict

from retrieval.stores.embedded.document_store import EmbeddedDocumentStore

T = TypeVar("T")


def check_arguments(document_store: Any, top_k: int) -> None:
    """Refuses a store of another kind (its retrieval methods differ) and a `top_k` below 1."""
    if not isinstance(document_store, EmbeddedDocumentStore):
        raise ValueError("document_store must be an EmbeddedDocumentStore")
    if top_k < 1:
        raise ValueError("top_k must be at least 1")


def retriever_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuilds a retriever from `to_dict` output, opening its store; `data` is left as it was."""
    params = {**data["init_parameters"]}
    params["document_store"] = EmbeddedDocumentStore.from_dict(params["document_store"])
    return default_from_dict(cls, {**data, "init_parameters": params})
