"""The Elasticsearch side of the document store: an explicit mapping and a connection check."""

from __future__ import annotations

from typing import Any

from retrieval.config import RetrievalConfig
from retrieval.embedders import embedding_dim


def _text_field() -> dict[str, Any]:
    # One field analysed three ways: the standard analyser keeps exact words (names, codes), the
    # English and Indonesian analysers add stemming and stop words for the two languages the team
    # writes in. The BM25 retriever's multi_match ("most_fields") sums the three.
    return {
        "type": "text",
        "analyzer": "standard",
        "fields": {
            "english": {"type": "text", "analyzer": "english"},
            "indonesian": {"type": "text", "analyzer": "indonesian"},
        },
    }


def index_mapping(embedder: str) -> dict[str, Any]:
    """
    The index mapping, with `dims` pinned to the embedder.

    Passing the dimension this way (rather than as a store argument, which the client rejects) means
    the first write cannot silently create a vector field of the wrong size.
    """
    return {
        "properties": {
            "content": _text_field(),
            "title": _text_field(),
            "embedding": {
                "type": "dense_vector",
                "dims": embedding_dim(embedder),
                "index": True,
                "similarity": "cosine",
            },
            "source": {"type": "keyword"},
            "file_sha256": {"type": "keyword"},
            "embedder": {"type": "keyword"},
            "ingest_fingerprint": {"type": "keyword"},
            "chunk_index": {"type": "integer"},
        },
        "dynamic_templates": [
            {"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}},
        ],
    }


def open_elasticsearch_store(config: RetrievalConfig) -> Any:
    """
    Connects to the server named by `config.location` and creates the index if needed.

    Credentials, when the server needs them, go in the URL (https://user:password@host:9200); nothing
    is read from the environment here.
    """
    from haystack_integrations.document_stores.elasticsearch import ElasticsearchDocumentStore

    from retrieval.stores import StoreUnavailableError

    store = ElasticsearchDocumentStore(
        hosts=config.location,
        index=config.index,
        custom_mapping=index_mapping(config.embedder),
        embedding_similarity_function="cosine",
        api_key=None,
        api_key_id=None,
        request_timeout=30,
        max_retries=1,
    )
    try:
        store.count_documents()
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise StoreUnavailableError(
            f"Elasticsearch at {_redact(config.location)} did not answer: {reason}"
        ) from error
    return store


def _redact(url: str) -> str:
    scheme, _, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}://{rest}"
