"""The embedded store's tables, and the few statements every write goes through."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from retrieval.stores.embedded.analysis import TextAnalyzer

SCHEMA_VERSION = 1

_TABLES = (
    """
    CREATE TABLE IF NOT EXISTS chunks (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        content TEXT,
        meta TEXT NOT NULL,
        embedding BLOB,
        extra TEXT
    )
    """,
    # Ingest asks "which chunks came from these files?" for every batch.
    "CREATE INDEX IF NOT EXISTS chunks_by_source ON chunks (json_extract(meta, '$.source'))",
    # The analysed terms of each chunk, under the chunk's rowid. unicode61 only splits them again on
    # the spaces the analyzer put there; the analysis itself (stems, stop words) is ours.
    """
    CREATE VIRTUAL TABLE IF NOT EXISTS chunk_terms
    USING fts5(terms, tokenize = 'unicode61 remove_diacritics 0')
    """,
    # Per term, the number of chunks holding it: lets a query skip terms that cannot change a ranking.
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunk_terms_vocab USING fts5vocab(chunk_terms, 'row')",
    "CREATE TABLE IF NOT EXISTS store_info (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def connect(path: Path) -> sqlite3.Connection:
    """
    A connection in autocommit mode (transactions are explicit) with WAL journaling.

    `synchronous = FULL` makes each committed batch survive a power cut, not only a killed process;
    ingest commits once per batch of chunks, so the fsync costs little.
    """
    connection = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    return connection


def create(connection: sqlite3.Connection) -> None:
    """Creates the tables of an empty file, and refuses a file made by a newer release."""
    for statement in _TABLES:
        connection.execute(statement)
    version = _info(connection, "schema_version")
    if version is None:
        _set_info(connection, "schema_version", str(SCHEMA_VERSION))
    elif int(version) > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"it was written by a newer tanya (store schema {version}, this one knows {SCHEMA_VERSION})"
        )


def reconcile(connection: sqlite3.Connection, analyzer: TextAnalyzer) -> str | None:
    """
    Makes the BM25 index match the chunks and the analyzer in force; says what it had to do.

    The two are written in the same transactions, so they only disagree after the analyzer setting
    changed or the file was edited by something else; either way the terms are rebuilt from the
    chunks, which stay the truth.
    """
    stored = _info(connection, "analyzer")
    chunks = connection.execute("SELECT count(*) FROM chunks").fetchone()[0]
    # FTS5 keeps one small row per entry in its docsize table: counting that is a b-tree count,
    # counting chunk_terms itself would read every entry's text.
    terms = connection.execute("SELECT count(*) FROM chunk_terms_docsize").fetchone()[0]
    reason = None
    if stored is not None and stored != analyzer.signature:
        reason = f"text analysis changed from {stored!r} to {analyzer.signature!r}"
    elif chunks != terms:
        reason = f"the BM25 index held {terms} entries for {chunks} chunks"
    if stored != analyzer.signature:
        _set_info(connection, "analyzer", analyzer.signature)
    if reason is None:
        return None
    connection.execute("DELETE FROM chunk_terms")
    rows = connection.execute("SELECT rowid, content, meta FROM chunks").fetchall()
    for rowid, content, meta in rows:
        connection.execute(
            "INSERT INTO chunk_terms (rowid, terms) VALUES (?, ?)",
            (rowid, index_terms(analyzer, content, meta)),
        )
    bump_generation(connection)
    return f"{reason}; re-indexed {len(rows)} chunks for keyword search"


def index_terms(analyzer: TextAnalyzer, content: str | None, meta_json: str) -> str:
    """The terms a chunk is indexed under: its title's and its text's."""
    title = json.loads(meta_json).get("title")
    text = content or ""
    if isinstance(title, str) and title:
        text = f"{title}\n{text}"
    return " ".join(analyzer.terms(text, analyzer.language(content or "")))


def informative_terms(connection: sqlite3.Connection, terms: list[str]) -> list[str]:
    """
    `terms` without those found in half the chunks or more, unless that would leave none.

    FTS5's BM25 gives such a term an IDF of 1e-6 (it clamps log((N - n + 0.5) / (n + 0.5)) <= 0),
    so it adds nothing to any score, but matching it walks most of the index: dropping it changes no
    ranking and makes a question full of "the", "of", "yang" as fast as one without them.
    """
    if len(terms) < 2:
        return terms
    chunks = connection.execute("SELECT count(*) FROM chunk_terms_docsize").fetchone()[0]
    marks = ",".join("?" * len(terms))
    common = {
        term
        for term, documents in connection.execute(
            f"SELECT term, doc FROM chunk_terms_vocab WHERE term IN ({marks})", terms
        )
        if 2 * documents >= chunks
    }
    kept = [term for term in terms if term not in common]
    return kept or terms


def insert_row(connection: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    """Inserts (id, content, meta, embedding, extra, terms) into both tables under one new rowid."""
    *chunk, terms = row
    cursor = connection.execute(
        "INSERT INTO chunks (id, content, meta, embedding, extra) VALUES (?, ?, ?, ?, ?)", chunk
    )
    connection.execute("INSERT INTO chunk_terms (rowid, terms) VALUES (?, ?)", (cursor.lastrowid, terms))


def delete_rows(connection: sqlite3.Connection, rowids: list[int]) -> None:
    """Deletes chunks and their terms."""
    for start in range(0, len(rowids), 500):
        part = rowids[start : start + 500]
        marks = ",".join("?" * len(part))
        connection.execute(f"DELETE FROM chunk_terms WHERE rowid IN ({marks})", part)
        connection.execute(f"DELETE FROM chunks WHERE rowid IN ({marks})", part)


def rowids_of(connection: sqlite3.Connection, ids: list[str]) -> list[int]:
    """Rowids of the chunks with these ids."""
    found: list[int] = []
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        marks = ",".join("?" * len(part))
        found.extend(
            row[0] for row in connection.execute(f"SELECT rowid FROM chunks WHERE id IN ({marks})", part)
        )
    return found


def bump_generation(connection: sqlite3.Connection) -> None:
    """Marks a change, so searchers in every process refresh their vectors."""
    connection.execute(
        "INSERT INTO store_info (key, value) VALUES ('generation', '1') "
        "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
    )


def generation(connection: sqlite3.Connection) -> int:
    """The current generation (0 for a store never written)."""
    value = _info(connection, "generation")
    return int(value) if value is not None else 0


def _info(connection: sqlite3.Connection, key: str) -> str | None:
    row = connection.execute("SELECT value FROM store_info WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _set_info(connection: sqlite3.Connection, key: str, value: str) -> None:
    connection.execute(
        "INSERT INTO store_info (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
