"""A home written by the in-memory store of earlier releases moves into the SQLite store once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from haystack.document_stores.in_memory import InMemoryDocumentStore

from retrieval.config import RetrievalConfig
from retrieval.ingestion.ingest import Ingestor
from retrieval.search.embedders import make_embedders
from retrieval.stores.document_store import open_document_store, store_path
from retrieval.stores.embedded.document_store import EmbeddedDocumentStore
from retrieval.stores.errors import StoreUnavailableError

QUESTIONS = {
    "Which port does the VPN use?": "vpn.html",
    "How much can I spend on a hotel?": "expenses.md",
    "Berapa hari cuti tahunan?": "cuti.txt",
    "Who carries the on-call pager?": "oncall.md",
    "Are old laptops donated to schools?": "laptops.pdf",
}


@pytest.fixture
def legacy_home(docs_dir: Path, config: RetrievalConfig) -> InMemoryDocumentStore:
    """A home as the previous release left it: the docs ingested into documents.json."""
    old = InMemoryDocumentStore(bm25_algorithm="BM25L", bm25_parameters={"k1": 2.0, "b": 0.75})
    Ingestor(store=old, config=config).run([docs_dir])
    config.data_dir.mkdir(parents=True, exist_ok=True)
    old.save_to_disk(str(config.data_dir / "documents.json"))
    return old


def test_an_old_home_is_migrated_on_first_open_without_re_embedding(
    legacy_home: InMemoryDocumentStore, config: RetrievalConfig, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        store = open_document_store(config)
    assert isinstance(store, EmbeddedDocumentStore)
    assert store.count_documents() == legacy_home.count_documents() >= 5
    assert not (config.data_dir / "documents.json").exists()
    assert (config.data_dir / "documents.json.migrated").exists()
    assert f"Moved {legacy_home.count_documents()} chunks" in caplog.text
    old = {d.id: d for d in legacy_home.filter_documents()}
    for document in store.filter_documents():
        assert document.content == old[document.id].content and document.meta == old[document.id].meta
        assert document.embedding == pytest.approx(old[document.id].embedding, abs=1e-6)
    # The next open finds the new file and leaves the kept one alone.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert open_document_store(config).count_documents() == store.count_documents()
    assert "Moved" not in caplog.text


def test_the_new_store_retrieves_what_the_old_one_did(
    legacy_home: InMemoryDocumentStore, config: RetrievalConfig
) -> None:
    store = open_document_store(config)
    text_embedder, _ = make_embedders(config.embedder)
    text_embedder.warm_up()
    old_right = new_right = 0
    for question, source in QUESTIONS.items():
        vector = text_embedder.run(text=question)["embedding"]
        before = legacy_home.embedding_retrieval(query_embedding=vector, top_k=5)
        after = store.embedding_retrieval(query_embedding=vector, top_k=5)
        assert [d.id for d in after] == [d.id for d in before], question
        assert [d.score for d in after] == pytest.approx([d.score for d in before], abs=1e-5)
        # BM25 is Okapi over stems now, not BM25L over words: scores differ, the answers may not get worse.
        old_right += (
            Path(legacy_home.bm25_retrieval(query=question, top_k=1)[0].meta["source"]).name == source
        )
        new_right += Path(store.bm25_retrieval(query=question, top_k=1)[0].meta["source"]).name == source
    assert new_right == len(QUESTIONS) and old_right <= new_right


def test_an_interrupted_migration_is_simply_run_again(
    legacy_home: InMemoryDocumentStore, config: RetrievalConfig
) -> None:
    half_built = store_path(config).with_name("documents.sqlite3.migrating")
    half_built.write_bytes(b"SQLite format 3\x00 and then the power went")
    assert open_document_store(config).count_documents() == legacy_home.count_documents()
    assert not half_built.exists()


def test_an_unreadable_old_store_says_what_to_do_and_is_left_in_place(config: RetrievalConfig) -> None:
    config.data_dir.mkdir(parents=True)
    legacy = config.data_dir / "documents.json"
    legacy.write_text('{"documents": [')
    with pytest.raises(StoreUnavailableError) as error:
        open_document_store(config)
    assert str(error.value).startswith(f"Embedded document store {legacy} could not be read")
    assert "`tanya ingest`" in str(error.value)
    assert legacy.read_text() == '{"documents": ['
    assert not store_path(config).exists()
