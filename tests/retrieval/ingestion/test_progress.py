"""The ingest meter: files, chunks, chunks/s and time left from the ingest's own events."""

from __future__ import annotations

from pathlib import Path

from retrieval.config import RetrievalConfig
from retrieval.ingestion.ingest import IngestEvent, Ingestor
from retrieval.ingestion.progress import IngestMeter
from retrieval.stores.document_store import open_document_store


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _file(done: int, status: str, chunks: int, size: int) -> IngestEvent:
    return IngestEvent(
        kind="file", total=4, done=done, path=Path(f"f{done}"), status=status, chunks=chunks, size=size
    )


def test_rate_and_time_left_leave_out_model_loading_and_unchanged_files() -> None:
    clock = FakeClock()
    meter = IngestMeter(clock=clock)
    meter.update(IngestEvent(kind="start", total=4, size=4000))
    assert meter.summary() == "0/4 files · 0 chunks"

    clock.now += 30  # loading the model
    meter.update(IngestEvent(kind="batch", total=4, chunks=10))
    assert meter.chunks_per_second is None and meter.seconds_left is None
    clock.now += 2.5
    meter.update(_file(1, "indexed", 10, 1000))
    meter.update(_file(2, "unchanged", 0, 1000))
    meter.update(IngestEvent(kind="batch", total=4, chunks=20))
    clock.now += 5
    meter.update(_file(3, "indexed", 20, 1000))

    assert meter.chunks_per_second == 4.0  # 30 chunks in the 7.5 s since embedding began
    assert meter.seconds_left == 1000 / (2000 / 7.5)  # 1000 bytes left at the embedded files' pace
    assert meter.summary() == "3/4 files · 30 chunks · 4.0 chunks/s · about 4 s left"
    meter.update(_file(4, "skipped", 0, 1000))
    assert meter.summary() == "4/4 files · 30 chunks · 4.0 chunks/s"


def test_long_estimates_read_in_minutes_and_hours() -> None:
    clock = FakeClock()
    meter = IngestMeter(clock=clock)
    meter.update(IngestEvent(kind="start", total=3, size=10_000_000))
    meter.update(IngestEvent(kind="batch", total=3, chunks=5))
    meter.update(_file(1, "indexed", 5, 0))
    clock.now += 10
    meter.update(_file(2, "indexed", 5, 1000))
    assert meter.summary().endswith("about 27.8 h left")  # 9,999,000 bytes at 100 bytes/s


def test_a_real_ingest_reports_sizes_that_add_up(docs_dir: Path, config: RetrievalConfig) -> None:
    events: list[IngestEvent] = []
    Ingestor(store=open_document_store(config), config=config, progress=events.append).run([docs_dir])
    start, files = events[0], [e for e in events if e.kind == "file"]
    visible = [p for p in docs_dir.rglob("*") if p.is_file() and ".hidden" not in p.parts]
    assert start.size == sum(p.stat().st_size for p in visible) > 0
    assert sum(e.size for e in files) == start.size
    meter = IngestMeter()
    for event in events:
        meter.update(event)
    assert (meter.files_done, meter.bytes_done, meter.chunks) == (5, start.size, sum(e.chunks for e in files))
