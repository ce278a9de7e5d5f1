"""Moving the Elasticsearch index to a new embedder or mapping without a moment of downtime.

The new physical index is built next to the one the alias points at, while searches keep reading the
old one through the alias. It is filled either from the old index's chunks (re-embedded where they were
made by another embedder, copied as they are otherwise) or, when files are given, by ingesting them
afresh. Chunks ingested into the old index meanwhile are caught up by comparing ids and file hashes;
then one `_aliases` request moves the alias. The old index stays (for a look back, or for processes
still configured with the old embedder) unless asked to delete it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from haystack import Document
from haystack.document_stores.types import DuplicatePolicy

from retrieval.config import RetrievalConfig
from retrieval.search.embedders import make_embedders
from retrieval.stores.elasticsearch_index import (
    IndexState,
    create_index,
    inspect_index,
    physical_index_name,
    switch_alias,
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ReindexPlan:
    """Where the alias points now and which index the settings want it to point at."""

    current: IndexState
    target: str

    @property
    def needed(self) -> bool:
        return self.current.target != self.target

    def describe(self) -> str:
        if not self.current.exists:
            return f"no index yet: create {self.target} and point {self.current.alias} at it"
        if not self.needed:
            return f"{self.current.alias} already points at {self.target}; nothing to do"
        kind = "plain index" if self.current.legacy else "alias"
        return f"{kind} {self.current.alias} → {self.current.target}: rebuild as {self.target} and switch"


@dataclass
class ReindexReport:
    """What a reindex did; `source` is None when there was no index before."""

    alias: str
    source: str | None
    target: str
    copied: int = 0
    embedded: int = 0
    ingested_files: int = 0
    caught_up: int = 0
    removed: int = 0
    switched: bool = False
    deleted_old: bool = False
    seconds: float = 0.0


def make_client(config: RetrievalConfig) -> Any:
    """A plain client for the reindex's own requests (the stores' clients create aliases on first use)."""
    from elasticsearch import Elasticsearch  # heavy

    return Elasticsearch(config.location, request_timeout=120, max_retries=1, retry_on_status=[502, 503, 504])


def plan_reindex(client: Any, config: RetrievalConfig) -> ReindexPlan:
    """Reads the alias and decides the target index; changes nothing."""
    return ReindexPlan(
        current=inspect_index(client, config.index), target=physical_index_name(config.index, config.embedder)
    )


class Reindexer:
    """Builds the index the settings want and switches the alias to it (see the module docstring)."""

    def __init__(
        self,
        *,
        config: RetrievalConfig,
        client: Any,
        progress: Progress | None = None,
        batch_size: int = 500,
    ) -> None:
        """
        :param client: an `elasticsearch.Elasticsearch` for the server in `config.location`.
        :param batch_size: chunks read, embedded and written per bulk request.
        """
        if not config.uses_elasticsearch:
            raise ValueError("reindexing applies to Elasticsearch; the embedded store re-embeds on ingest")
        self.config = config
        self.client = client
        self.progress = progress
        self.batch_size = batch_size
        self._embedder: Any = None

    def plan(self) -> ReindexPlan:
        return plan_reindex(self.client, self.config)

    def run(self, paths: Sequence[Path | str] = (), *, delete_old: bool = False) -> ReindexReport:
        """
        Rebuilds and switches when the plan says so; returns at once when the alias is already right.

        :param paths: when given, the new index is filled by ingesting these files and folders instead of
            from the old index's chunks (needed after a chunking change, or to start over).
        :param delete_old: delete the previous index once the alias has moved off it.
        """
        from retrieval.stores.elasticsearch_store import make_elasticsearch_store  # heavy

        started = time.perf_counter()
        plan = self.plan()
        source = plan.current.target
        report = ReindexReport(alias=plan.current.alias, source=source, target=plan.target)
        self._say(plan.describe())
        if not plan.needed:
            return report
        if self.client.indices.exists(index=plan.target):
            # Left by an interrupted reindex: the alias does not point at it (plan.needed), nobody reads it.
            self._say(f"deleting the unfinished {plan.target} of an earlier run")
            self.client.indices.delete(index=plan.target)
        create_index(self.client, plan.target, self.config.embedder)
        store = make_elasticsearch_store(self.config, index=plan.target)
        if paths:
            from retrieval.ingestion.ingest import Ingestor  # heavy

            ingest = Ingestor(store=store, config=self.config).run(list(paths))
            report.ingested_files = ingest.files_indexed + ingest.files_unchanged
            report.copied = ingest.chunks_written
            self._say(f"ingested {report.ingested_files} file(s), {report.copied} chunks into {plan.target}")
        elif source is not None:
            report.copied, report.embedded = self._copy(source, store, query={"match_all": {}})
            self._say(f"copied {report.copied} chunks ({report.embedded} re-embedded) into {plan.target}")
            report.caught_up, report.removed = self._catch_up(source, plan.target, store)
            if report.caught_up or report.removed:
                self._say(
                    f"caught up {report.caught_up} chunk(s) written meanwhile, removed {report.removed}"
                )
        self.client.indices.refresh(index=plan.target)
        switch_alias(self.client, plan.current, plan.target)
        report.switched = True
        report.deleted_old = plan.current.legacy  # `remove_index` in the same request deleted it
        self._say(f"{plan.current.alias} now points at {plan.target}")
        if delete_old and source is not None and not plan.current.legacy:
            self.client.indices.delete(index=source)
            report.deleted_old = True
            self._say(f"deleted {source}")
        report.seconds = time.perf_counter() - started
        return report

    # -- filling ----------------------------------------------------------------------------------

    def _copy(self, source: str, store: Any, *, query: dict[str, Any]) -> tuple[int, int]:
        """Copies the chunks `query` matches; re-embeds those made by another embedder. Returns counts."""
        copied = embedded = 0
        batch: list[Document] = []
        for document in self._scan(source, query):
            batch.append(document)
            if len(batch) >= self.batch_size:
                embedded += self._write(batch, store)
                copied += len(batch)
                batch = []
        if batch:
            embedded += self._write(batch, store)
            copied += len(batch)
        return copied, embedded

    def _write(self, batch: list[Document], store: Any) -> int:
        stale = [
            i
            for i, doc in enumerate(batch)
            if doc.embedding is None or doc.meta.get("embedder") != self.config.embedder
        ]
        if stale:
            fresh = self._embed([self._relabel(batch[i]) for i in stale])
            for i, document in zip(stale, fresh, strict=True):
                batch[i] = document
        # The bulk write retries transient rejections; the refresh comes once, before the switch.
        store.write_documents(batch, policy=DuplicatePolicy.OVERWRITE, refresh=False)
        return len(stale)

    def _relabel(self, document: Document) -> Document:
        """The chunk's meta as ingest would write it with the configured embedder (chunking unchanged)."""
        fingerprint = str(document.meta.get("ingest_fingerprint") or "")
        chunking = fingerprint.split("|", 1)[1] if "|" in fingerprint else ""
        meta = {**document.meta, "embedder": self.config.embedder}
        meta["ingest_fingerprint"] = f"{self.config.embedder}|{chunking}"
        return replace(document, meta=meta, embedding=None)

    def _embed(self, documents: list[Document]) -> list[Document]:
        if self._embedder is None:
            self._embedder = make_embedders(
                self.config.embedder, batch_size=self.config.batch_size, engine=self.config.embedding_engine
            )[1]
            self._embedder.warm_up()
        return list(self._embedder.run(documents=documents)["documents"])

    def _catch_up(self, source: str, target: str, store: Any) -> tuple[int, int]:
        """Brings `target` level with chunks ingested into `source` (through the alias) during the copy."""
        self.client.indices.refresh(index=target)  # the copy wrote without refreshing
        old, new = self._versions(source), self._versions(target)
        missing = [doc_id for doc_id, sha in old.items() if new.get(doc_id) != sha]
        extra = sorted(set(new) - set(old))
        copied = 0
        for start in range(0, len(missing), 1000):
            ids = missing[start : start + 1000]
            copied += self._copy(source, store, query={"ids": {"values": ids}})[0]
        if extra:
            store.delete_documents(extra, refresh=False)
        return copied, len(extra)

    def _versions(self, index: str) -> dict[str, str]:
        """Chunk id → the hash of the file it came from, for every chunk in `index`."""
        from elasticsearch import helpers  # heavy

        hits = helpers.scan(
            self.client,
            index=index,
            query={"query": {"match_all": {}}, "_source": ["file_sha256"]},
            size=2000,
        )
        return {hit["_id"]: str((hit.get("_source") or {}).get("file_sha256")) for hit in hits}

    def _scan(self, index: str, query: dict[str, Any]) -> Iterator[Document]:
        from elasticsearch import helpers  # heavy

        for hit in helpers.scan(self.client, index=index, query={"query": query}, size=self.batch_size):
            data = dict(hit.get("_source") or {})
            data.pop("score", None)
            data["id"] = hit["_id"]
            yield Document.from_dict(data)

    def _say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)
