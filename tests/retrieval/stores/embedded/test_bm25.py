"""Keyword search over the FTS5 index: ranking, scores, and the terms it may skip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from haystack import Document

from retrieval.stores.embedded import schema
from retrieval.stores.embedded.document_store import EmbeddedDocumentStore

QA_EN = Path(__file__).resolve().parents[5] / "shared" / "data" / "qa-en"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def qa_store(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedDocumentStore:
    if not QA_EN.exists():
        pytest.skip(f"{QA_EN} is missing: the shared data sets are not checked out beside the repository")
    store = EmbeddedDocumentStore(path=tmp_path_factory.mktemp("bm25") / "s.sqlite3")
    store.write_documents(
        [
            Document(id=str(row["id"]), content=row["text"], meta={"title": row.get("title", "")})
            for row in _rows(QA_EN / "corpus.jsonl")
        ]
    )
    return store


def test_skipping_terms_in_half_the_chunks_changes_no_ranking(
    qa_store: EmbeddedDocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    questions = [row["question"] for row in _rows(QA_EN / "questions.jsonl")][:80]
    pruned = [qa_store.bm25_retrieval(q, top_k=10) for q in questions]
    monkeypatch.setattr(schema, "informative_terms", lambda connection, terms: terms)
    full = [qa_store.bm25_retrieval(q, top_k=10) for q in questions]
    for question, fast, slow in zip(questions, pruned, full, strict=True):
        assert [d.score for d in fast] == pytest.approx([d.score for d in slow], abs=1e-4), question
        # Equal scores may swap places, the ten chunks stay the same.
        assert {d.id for d in fast} == {d.id for d in slow}, question


def test_only_common_terms_still_find_something(tmp_path: Path) -> None:
    store = EmbeddedDocumentStore(path=tmp_path / "s.sqlite3", analyzer="plain")
    store.write_documents([Document(id=str(i), content=f"the report {i} of the team") for i in range(10)])
    assert schema.informative_terms(store._connection(), ["the", "team"]) == ["the", "team"]
    assert len(store.bm25_retrieval("the team", top_k=3)) == 3


def test_rarer_words_rank_higher_and_titles_count(tmp_path: Path) -> None:
    store = EmbeddedDocumentStore(path=tmp_path / "s.sqlite3")
    store.write_documents(
        [
            Document(
                id="vpn", content="Install the client and import the profile.", meta={"title": "VPN setup"}
            ),
            Document(
                id="hotel", content="Hotels are reimbursed up to 150 euros.", meta={"title": "Expenses"}
            ),
            Document(
                id="other", content="Install the printer driver from the portal.", meta={"title": "Printing"}
            ),
        ]
    )
    hits = store.bm25_retrieval("How do I install the VPN?", top_k=3)
    # "install" is in two of three chunks: its IDF is clamped to nothing, so only "vpn" decides.
    assert [d.id for d in hits] == ["vpn"] and hits[0].score > 0
    assert store.bm25_retrieval("hotel reimbursement", top_k=1)[0].id == "hotel"  # stems: hotels, reimbursed
    # Quotes and FTS5 syntax in a question are searched as words, never parsed as a query.
    assert store.bm25_retrieval('vpn" OR NOT "x', top_k=3)[0].id == "vpn"
    assert store.bm25_retrieval('"; DROP TABLE chunks; --', top_k=3) == []
    assert store.count_documents() == 3
