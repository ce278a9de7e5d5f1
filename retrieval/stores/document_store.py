"""Opens and persists the document store: embedded in-memory by default, Elasticsearch on request."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.document_stores.types import DocumentStore, DuplicatePolicy

from retrieval.config import RetrievalConfig
from retrieval.stores.errors import StoreUnavailableError

STORE_FILE = "documents.json"


def store_path(config: RetrievalConfig) -> Path:
    """Where the embedded store lives on disk."""
    return config.data_dir / STORE_FILE


def open_document_store(config: RetrievalConfig) -> DocumentStore:
    """
    Returns the store named by `config.location`.

    The embedded store is rebuilt from its JSON file each time, with the BM25 settings of `config`
    rather than the ones it was saved with, so tuning them needs no re-ingest.
    """
    if config.uses_elasticsearch:
        from retrieval.stores.elasticsearch_store import open_elasticsearch_store  # heavy

        return open_elasticsearch_store(config)

    store = _new_in_memory_store(config)
    path = store_path(config)
    if not path.exists():
        return store
    try:
        loaded = InMemoryDocumentStore.load_from_disk(str(path))
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise StoreUnavailableError(f"Embedded document store {path} could not be read: {reason}") from error
    if loaded.to_dict() == store.to_dict():
        store.shutdown()
        return loaded
    # Saved with other settings: move the documents (with their embeddings, which `storage` keeps and
    # filter_documents would strip) into a store built from the current ones.
    store.write_documents(list(loaded.storage.values()), policy=DuplicatePolicy.OVERWRITE)
    loaded.shutdown()
    return store


def _new_in_memory_store(config: RetrievalConfig) -> InMemoryDocumentStore:
    return InMemoryDocumentStore(
        bm25_algorithm=config.bm25_algorithm,  # type: ignore[arg-type]
        bm25_parameters={"k1": config.bm25_k1, "b": config.bm25_b},
        embedding_similarity_function="cosine",
        index=config.index,
        # Instance-local storage: two stores opened in one process (tests, a reload) must not share data.
        shared=False,
        return_embedding=False,
    )


def save_document_store(store: DocumentStore, config: RetrievalConfig) -> None:
    """
    Persists the embedded store; Elasticsearch persists by itself, so this is a no-op there.

    The file is written next to the old one and renamed over it, so a crash mid-write leaves the
    previous complete file in place instead of a truncated one.
    """
    if not isinstance(store, InMemoryDocumentStore):
        return
    path = store_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".documents-", suffix=".json.tmp", dir=path.parent)
    os.close(handle)
    try:
        store.save_to_disk(temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def count_documents(store: Any) -> int:
    """Number of chunks in the store."""
    return int(store.count_documents())
