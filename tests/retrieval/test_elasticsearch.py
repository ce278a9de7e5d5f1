"""Integration tests against a real Elasticsearch; skipped unless TANYA_TEST_ELASTICSEARCH_URL is set."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.config import RetrievalConfig
from retrieval.ingest import Ingestor
from retrieval.search import HybridSearcher
from retrieval.stores import count_documents, open_document_store, save_document_store

pytestmark = pytest.mark.elasticsearch


def test_index_is_created_with_the_pinned_mapping(elasticsearch_config: RetrievalConfig) -> None:
    store = open_document_store(elasticsearch_config)
    mapping = store.client.indices.get_mapping(index=elasticsearch_config.index)
    properties = mapping[elasticsearch_config.index]["mappings"]["properties"]
    assert properties["embedding"]["dims"] == 384
    assert properties["content"]["fields"]["indonesian"]["analyzer"] == "indonesian"
    assert count_documents(store) == 0


def test_ingest_and_search_round_trip(docs_dir: Path, elasticsearch_config: RetrievalConfig) -> None:
    store = open_document_store(elasticsearch_config)
    report = Ingestor(store=store, config=elasticsearch_config).run([docs_dir])
    assert report.files_indexed == 5 and report.files_skipped == []
    assert count_documents(store) == report.chunks_written
    save_document_store(store, elasticsearch_config)
    assert not (elasticsearch_config.data_dir / "documents.json").exists()

    searcher = HybridSearcher(store=store, config=elasticsearch_config)
    hits = searcher.search("Which port does the VPN use?")
    assert Path(hits[0].meta["source"]).name == "vpn.html"
    assert Path(searcher.search("Berapa hari cuti tahunan?")[0].meta["source"]).name == "cuti.txt"
    assert searcher.search("What is the capital of Mongolia?") == []


def test_reingest_is_incremental(docs_dir: Path, elasticsearch_config: RetrievalConfig) -> None:
    store = open_document_store(elasticsearch_config)
    ingestor = Ingestor(store=store, config=elasticsearch_config)
    ingestor.run([docs_dir])
    assert ingestor.run([docs_dir]).files_unchanged == 5

    (docs_dir / "cuti.txt").write_text("Cuti tahunan\n\nSetiap karyawan mendapat 30 hari cuti.\n")
    report = ingestor.run([docs_dir])
    assert report.files_indexed == 1 and report.chunks_deleted >= 1
    texts = [d.content for d in store.filter_documents()]
    assert any("30 hari" in t for t in texts) and not any("24 hari" in t for t in texts)
