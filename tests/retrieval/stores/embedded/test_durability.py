"""What survives a killed writer, what other processes see while one writes, and self-repair."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from haystack import Document

from retrieval.stores.embedded.document_store import EmbeddedDocumentStore


def _doc(i: int, word: str = "steady") -> Document:
    return Document(
        id=f"d{i}", content=f"{word} chunk number {i}", embedding=[1.0, float(i), 0.5], meta={"n": i}
    )


def _python(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _consistent(store: EmbeddedDocumentStore) -> int:
    """The chunk count, after checking that the keyword and vector indexes hold the same chunks."""
    count = store.count_documents()
    connection = sqlite3.connect(store.path)
    try:
        terms = connection.execute("SELECT count(*) FROM chunk_terms").fetchone()[0]
        orphans = connection.execute(
            "SELECT count(*) FROM chunk_terms WHERE rowid NOT IN (SELECT rowid FROM chunks)"
        ).fetchone()[0]
    finally:
        connection.close()
    assert (terms, orphans) == (count, 0)
    assert len(store.embedding_retrieval(query_embedding=[1.0, 0.0, 0.0], top_k=10_000)) == count
    return count


def test_a_writer_killed_mid_transaction_leaves_the_previous_state(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    store = EmbeddedDocumentStore(path=path)
    store.write_documents([_doc(i) for i in range(20)])

    # The child overwrites every chunk and adds 200 more, and stops inside that transaction (after
    # 100 rows) until it is killed.
    writer = _python(
        f"""
        import sys
        from haystack import Document
        from haystack.document_stores.types import DuplicatePolicy
        from retrieval.stores.embedded import schema
        from retrieval.stores.embedded.document_store import EmbeddedDocumentStore

        real_insert, rows = schema.insert_row, []
        def insert_then_stall(connection, row):
            real_insert(connection, row)
            rows.append(row)
            if len(rows) == 100:
                print("inside", flush=True)
                sys.stdin.read()
        schema.insert_row = insert_then_stall
        store = EmbeddedDocumentStore(path={str(path)!r})
        docs = [Document(id=f"d{{i}}", content=f"changed {{i}}", embedding=[0.0, 1.0, 0.0]) for i in range(220)]
        store.write_documents(docs, policy=DuplicatePolicy.OVERWRITE)
        """
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "inside", writer.stderr.read() if writer.stderr else ""
    finally:
        writer.kill()
        writer.wait(timeout=30)

    reopened = EmbeddedDocumentStore(path=path)
    assert _consistent(reopened) == 20
    assert {d.content for d in reopened.filter_documents()} == {f"steady chunk number {i}" for i in range(20)}
    assert reopened.bm25_retrieval(query="changed", top_k=5) == []
    # And it takes writes again: the killed writer's lock went with it.
    reopened.write_documents([_doc(99)])
    assert _consistent(reopened) == 21


def test_readers_see_whole_batches_while_another_process_writes(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    reader = EmbeddedDocumentStore(path=path)
    batches, size = 15, 40
    writer = _python(
        f"""
        from haystack import Document
        from retrieval.stores.embedded.document_store import EmbeddedDocumentStore

        store = EmbeddedDocumentStore(path={str(path)!r})
        for batch in range({batches}):
            store.write_documents([
                Document(id=f"b{{batch}}-{{i}}", content=f"batch{{batch}} words", embedding=[1.0, batch, i])
                for i in range({size})
            ])
        """
    )
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while writer.poll() is None:
        assert time.monotonic() < deadline, "the writer did not finish"
        count = reader.count_documents()
        assert count % size == 0, f"a reader saw half a batch ({count} chunks)"
        seen.add(count)
        newest = count // size - 1
        if newest >= 0:
            hits = reader.bm25_retrieval(query=f"batch{newest}", top_k=size + 1)
            assert len(hits) == size
            vectors = reader.embedding_retrieval(query_embedding=[1.0, 0.0, 0.0], top_k=10_000)
            assert len(vectors) >= count  # the matrix caught up with this process's view, or later
    assert writer.returncode == 0, writer.stderr.read() if writer.stderr else ""
    assert _consistent(reader) == batches * size
    assert len(seen) > 1  # it really read while the other process was writing


def test_a_keyword_index_out_of_step_is_detected_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "store.sqlite3"
    store = EmbeddedDocumentStore(path=path)
    store.write_documents([_doc(i, word="orchid") for i in range(5)])
    store.close()
    with sqlite3.connect(path) as connection:  # something other than tanya edited the file
        connection.execute("DELETE FROM chunk_terms WHERE rowid IN (SELECT rowid FROM chunks LIMIT 2)")

    with caplog.at_level(logging.WARNING):
        reopened = EmbeddedDocumentStore(path=path)
    assert "the BM25 index held 3 entries for 5 chunks" in caplog.text
    assert len(reopened.bm25_retrieval(query="orchid", top_k=10)) == 5
    assert _consistent(reopened) == 5


def test_a_store_from_a_newer_release_is_refused_not_rewritten(tmp_path: Path) -> None:
    from retrieval.stores.errors import StoreUnavailableError

    path = tmp_path / "store.sqlite3"
    EmbeddedDocumentStore(path=path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE store_info SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreUnavailableError, match="newer tanya"):
        EmbeddedDocumentStore(path=path)
