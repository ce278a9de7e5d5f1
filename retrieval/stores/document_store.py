"""Opens the document store: the embedded SQLite store by default, Elasticsearch on request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from haystack.document_stores.types import DocumentStore

from retrieval.config import RetrievalConfig

STORE_FILE = "documents.sqlite3"


def store_path(config: RetrievalConfig) -> Path:
    """Where the embedded store lives on disk."""
    return config.data_dir / STORE_FILE


def open_document_store(config: RetrievalConfig) -> DocumentStore:
    """
    Returns the store named by `config.location`.

    A home still holding the `documents.json` of an earlier release is migrated on this first
    open (the vectors are copied, nothing is re-embedded). Raises StoreUnavailableError when the
    file cannot be read, with what to do about it.
    """
    if config.uses_elasticsearch:
        from retrieval.stores.elasticsearch_store import open_elasticsearch_store  # heavy

        return open_elasticsearch_store(config)

    from retrieval.stores.embedded.document_store import EmbeddedDocumentStore  # heavy
    from retrieval.stores.embedded.migration import LEGACY_FILE, migrate_json_store  # heavy

    path = store_path(config)
    legacy = config.data_dir / LEGACY_FILE
    if not path.exists() and legacy.exists():
        migrate_json_store(legacy, path, analyzer=config.text_analyzer, languages=config.languages)
    return EmbeddedDocumentStore(path=path, analyzer=config.text_analyzer, languages=config.languages)


def count_documents(store: Any) -> int:
    """Number of chunks in the store."""
    return int(store.count_documents())
