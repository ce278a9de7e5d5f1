"""Files in, searchable chunks out: convert, repair, clean, split, embed and write with stable ids."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from haystack import Document
from haystack.components.writers import DocumentWriter
from haystack.document_stores.types import DuplicatePolicy

from retrieval.config import RetrievalConfig
from retrieval.ingestion.converters import FileConverter, SkipFile, SourceFile
from retrieval.ingestion.preprocessing import build_preprocessing_pipeline
from retrieval.search.embedders import make_embedders

# Splitter bookkeeping that means nothing once chunks get their own ids.
_DROPPED_META = ("_split_overlap", "source_id", "split_idx_start", "file_path")


@dataclass(frozen=True)
class IngestEvent:
    """
    One step of an ingestion, for a progress display.

    `start` comes first with `total` files; then one `file` event per file with its `status`,
    each batch of files to embed announced by a `batch` event with its `chunks`; `done` comes last.
    """

    kind: Literal["start", "batch", "file", "done"]
    total: int
    done: int = 0
    path: Path | None = None
    status: Literal["indexed", "unchanged", "skipped"] | None = None
    chunks: int = 0
    reason: str | None = None
    # Bytes on disk: of all files in `start`, of this one in `file`. Chunks are only known once a
    # file is converted, so progress and time left are measured in bytes.
    size: int = 0


@dataclass
class IngestReport:
    """What an ingestion changed; `files_skipped` holds (path, one-line reason) pairs."""

    files_indexed: int = 0
    files_unchanged: int = 0
    files_skipped: list[tuple[Path, str]] = field(default_factory=list)
    chunks_written: int = 0
    chunks_deleted: int = 0
    seconds: float = 0.0


@dataclass
class _Pending:
    source: SourceFile
    key: str
    chunks: list[Document]
    stale_ids: set[str]
    size: int


def chunk_id(source: str, index: int, content: str) -> str:
    """
    The id of a chunk: the same file, position and text always give the same id.

    Re-ingesting an unchanged file therefore overwrites nothing new, and an edited chunk gets a new
    id while its untouched neighbours keep theirs.
    """
    content_hash = hashlib.sha256(content.encode("utf-8")).hexdigest()
    return hashlib.sha256(f"{source}\x00{index}\x00{content_hash}".encode()).hexdigest()


class Ingestor:
    """
    Indexes files and folders into the document store, incrementally.

    A file whose bytes (and the chunking/embedding settings) are unchanged since the last run is
    skipped without embedding anything; an edited file's chunks replace its old ones. A file that
    cannot be used is reported with a reason and the rest carry on.
    """

    def __init__(
        self,
        *,
        store: Any,
        config: RetrievalConfig,
        progress: Callable[[IngestEvent], None] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.progress = progress
        self._converter = FileConverter()
        self._embedder = make_embedders(
            config.embedder, batch_size=config.batch_size, engine=config.embedding_engine
        )[1]
        self._writer = DocumentWriter(document_store=store, policy=DuplicatePolicy.OVERWRITE)
        self._preprocessing = build_preprocessing_pipeline(config)
        self._warm = False

    def warm_up(self) -> None:
        """Loads the embedding model (and the embedded store's language identifier); `run` does it on first use otherwise."""
        if not self._warm:
            self._embedder.warm_up()
            analyzer = getattr(self.store, "analyzer", None)  # the embedded store analyses text itself
            if analyzer is not None:
                analyzer.warm_up()
            self._warm = True

    def run(self, paths: Sequence[Path | str]) -> IngestReport:
        """
        Ingests `paths` (files, or folders searched recursively, hidden entries excluded).

        Each batch of chunks is committed as it is embedded, so a run stopped half-way (an error, a
        killed process) keeps the files it finished, and the next run starts after them.
        """
        started = time.perf_counter()
        report = IngestReport()
        files, missing = self._expand(paths)
        total = len(files) + len(missing)
        sizes = {path: _size(path) for path in files}
        self._emit(IngestEvent(kind="start", total=total, size=sum(sizes.values())))
        done = 0
        for path, reason in missing:
            done += 1
            self._skip(report, path, reason, done, total)
        existing = self._existing_chunks([self._key(path) for path in files])
        pending: list[_Pending] = []
        for path in files:
            key = self._key(path)
            ids, sha, fingerprint = existing.get(key, (set(), None, None))
            try:
                source = self._converter.read(path)
                if ids and sha == source.sha256 and fingerprint == self.config.ingest_fingerprint:
                    report.files_unchanged += 1
                    done += 1
                    self._emit(
                        IngestEvent(
                            kind="file",
                            total=total,
                            done=done,
                            path=path,
                            status="unchanged",
                            size=sizes[path],
                        )
                    )
                    continue
                chunks = self._chunks(source, key)
            except Exception as error:  # one odd file must not stop a folder's ingest
                done += 1
                reason = str(error) if isinstance(error, SkipFile) else f"could not be converted: {error}"
                # A file emptied or broken since the last run keeps no stale chunks behind.
                if ids:
                    self.store.delete_documents(sorted(ids))
                    report.chunks_deleted += len(ids)
                self._skip(
                    report, path, (reason.strip().splitlines() or [reason])[0], done, total, sizes[path]
                )
                continue
            pending.append(_Pending(source=source, key=key, chunks=chunks, stale_ids=ids, size=sizes[path]))
            if sum(len(p.chunks) for p in pending) >= self.config.batch_size:
                done = self._flush(pending, report, done, total)
                pending = []
        done = self._flush(pending, report, done, total)
        report.seconds = time.perf_counter() - started
        self._emit(IngestEvent(kind="done", total=total, done=done))
        return report

    def _chunks(self, source: SourceFile, key: str) -> list[Document]:
        document = self._converter.convert(source)
        chunks = self._preprocessing.run({"repair": {"documents": [document]}})["splitter"]["documents"]
        chunks = [chunk for chunk in chunks if chunk.content and chunk.content.strip()]
        if not chunks:
            raise SkipFile("no text found")
        result = []
        for index, chunk in enumerate(chunks):
            meta = {k: v for k, v in chunk.meta.items() if k not in _DROPPED_META}
            meta.update(
                source=key,
                title=document.meta["title"],
                file_sha256=source.sha256,
                chunk_index=index,
                chunk_count=len(chunks),
                embedder=self.config.embedder,
                ingest_fingerprint=self.config.ingest_fingerprint,
            )
            result.append(Document(id=chunk_id(key, index, chunk.content), content=chunk.content, meta=meta))
        return result

    def _flush(self, pending: list[_Pending], report: IngestReport, done: int, total: int) -> int:
        if not pending:
            return done
        self.warm_up()
        self._emit(
            IngestEvent(kind="batch", total=total, done=done, chunks=sum(len(p.chunks) for p in pending))
        )
        embedded = self._embedder.run(documents=[c for p in pending for c in p.chunks])["documents"]
        self._writer.run(documents=embedded)
        for item in pending:
            stale = sorted(item.stale_ids - {chunk.id for chunk in item.chunks})
            if stale:
                self.store.delete_documents(stale)
            report.files_indexed += 1
            report.chunks_written += len(item.chunks)
            report.chunks_deleted += len(stale)
            done += 1
            self._emit(
                IngestEvent(
                    kind="file",
                    total=total,
                    done=done,
                    path=item.source.path,
                    status="indexed",
                    chunks=len(item.chunks),
                    size=item.size,
                )
            )
        return done

    def _existing_chunks(self, keys: list[str]) -> dict[str, tuple[set[str], str | None, str | None]]:
        """Per source: ids of its chunks, and the file hash and settings they were made with."""
        found: dict[str, tuple[set[str], str | None, str | None]] = {}
        if not keys:
            return found
        documents = self.store.filter_documents(
            filters={"field": "meta.source", "operator": "in", "value": keys}
        )
        for doc in documents:
            ids, sha, fingerprint = found.get(doc.meta["source"], (set(), None, None))
            ids.add(doc.id)
            # A file partly written by an interrupted run shows mixed hashes; any mismatch re-ingests it.
            if sha is not None and sha != doc.meta.get("file_sha256"):
                sha = "mixed"
            else:
                sha = doc.meta.get("file_sha256")
            if fingerprint is not None and fingerprint != doc.meta.get("ingest_fingerprint"):
                fingerprint = "mixed"
            else:
                fingerprint = doc.meta.get("ingest_fingerprint")
            found[doc.meta["source"]] = (ids, sha, fingerprint)
        return found

    def _expand(self, paths: Sequence[Path | str]) -> tuple[list[Path], list[tuple[Path, str]]]:
        files: dict[str, Path] = {}
        missing: list[tuple[Path, str]] = []
        for given in paths:
            path = Path(given).expanduser()
            if path.is_dir():
                for found in _walk(path):
                    files.setdefault(self._key(found), found)
            elif path.exists() or path.is_symlink():
                files.setdefault(self._key(path), path)
            else:
                missing.append((path, "does not exist"))
        return list(files.values()), missing

    @staticmethod
    def _key(path: Path) -> str:
        """The `source` of a file's chunks: its absolute path, so the cwd of a run does not matter."""
        return str(path.expanduser().resolve())

    def _skip(
        self, report: IngestReport, path: Path, reason: str, done: int, total: int, size: int = 0
    ) -> None:
        report.files_skipped.append((path, reason))
        self._emit(
            IngestEvent(
                kind="file", total=total, done=done, path=path, status="skipped", reason=reason, size=size
            )
        )

    def _emit(self, event: IngestEvent) -> None:
        if self.progress is not None:
            self.progress(event)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # reported when the file is read
        return 0


def _walk(root: Path) -> Iterator[Path]:
    # os.walk does not follow directory symlinks, so a link loop cannot trap the walk.
    for directory, subdirectories, filenames in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(directory) / name
