"""The `[n]` citations in an answer, checked against the sources it was given.

Kept apart from the pipeline, and free of heavy imports, so the service can check an answer without
loading Haystack.
"""

from __future__ import annotations

import re

_CITATION = re.compile(r"\[(\d{1,3})\]")


def _cited_numbers(text: str) -> list[int]:
    """Every number `[n]` in `text`, once each, in order of first mention."""
    return list(dict.fromkeys(int(match) for match in _CITATION.findall(text)))


def cited_sources(text: str, source_count: int) -> list[int]:
    """The source numbers `[n]` in `text` that exist among `source_count` sources, in order of mention."""
    return [n for n in _cited_numbers(text) if 1 <= n <= source_count]


def unknown_citations(text: str, source_count: int) -> list[int]:
    """The numbers `[n]` that `text` cites but no source has: a small model's tell that it is making
    things up, worth a warning next to the answer."""
    return [n for n in _cited_numbers(text) if not 1 <= n <= source_count]


def without_citations(text: str) -> str:
    """`text` with every `[n]` marker removed: what the answer says, apart from where it says it."""
    return _CITATION.sub("", text)


def ensure_citation(text: str, source_count: int) -> tuple[str, bool]:
    """Appends `[1]` when sources were given but `text` cites none of them; says whether it did."""
    if source_count == 0 or cited_sources(text, source_count):
        return text, False
    return f"{text.rstrip()} [1]", True
