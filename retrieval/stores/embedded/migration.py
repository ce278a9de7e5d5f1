"""Moves a home's documents.json (the in-memory store of earlier releases) into the SQLite store once."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from haystack.document_stores.types import DuplicatePolicy

from retrieval.stores.embedded.document_store import EmbeddedDocumentStore
from retrieval.stores.errors import StoreUnavailableError

logger = logging.getLogger(__name__)

LEGACY_FILE = "documents.json"
MIGRATED_SUFFIX = ".migrated"


def migrate_json_store(
    json_path: Path, sqlite_path: Path, *, analyzer: str, languages: tuple[str, ...]
) -> int:
    """
    Copies every chunk (text, metadata, vector) of `json_path` into a new store at `sqlite_path`.

    Nothing is re-embedded. The new file is built under a temporary name and renamed into place
    only when complete, so an interrupted migration simply runs again; the old file is then
    renamed to `documents.json.migrated` rather than deleted. Returns the number of chunks moved.
    """
    from haystack.document_stores.in_memory import InMemoryDocumentStore  # heavy

    try:
        legacy = InMemoryDocumentStore.load_from_disk(str(json_path))
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise StoreUnavailableError(
            f"Embedded document store {json_path} could not be read: {reason}. Move it aside and run "
            "`tanya ingest` on your documents again."
        ) from error
    documents = list(legacy.storage.values())
    building = sqlite_path.with_name(sqlite_path.name + ".migrating")
    for leftover in _files_of(building):
        leftover.unlink(missing_ok=True)
    store = EmbeddedDocumentStore(path=building, analyzer=analyzer, languages=languages)
    try:
        for start in range(0, len(documents), 500):
            store.write_documents(documents[start : start + 500], policy=DuplicatePolicy.OVERWRITE)
        store.checkpoint()
    finally:
        store.close()
    os.replace(building, sqlite_path)
    for leftover in _files_of(building):
        leftover.unlink(missing_ok=True)
    json_path.rename(json_path.with_name(json_path.name + MIGRATED_SUFFIX))
    logger.warning(
        "Moved %d chunks from %s into %s; the old file is kept as %s%s.",
        len(documents),
        json_path,
        sqlite_path,
        json_path.name,
        MIGRATED_SUFFIX,
    )
    return len(documents)


def _files_of(database: Path) -> list[Path]:
    return [database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")]
