"""Notices an answer in a thread that repeats an earlier answer instead of answering the new question.

The thread's earlier turns go into the prompt so that a follow-up like "and on Android?" makes sense. A
small model often takes the easy way and says again what it said last, even when the new question is about
something else: the bundled SmolLM2, asked "Which file formats can I ingest?" after "How do I correct a
wrong answer?", answered again that corrections are stored in the database. The test is a run of words
that an earlier answer holds and the current sources do not: two answers that quote the same source
sentence are fine, text carried over from the thread with nothing behind it is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from retrieval.answering.citations import without_citations

# Six words repeat by chance ("you can find it in the"); eight in a row rarely do. The copies seen run
# for nine words or more.
MIN_COPIED_WORDS = 8
_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORD.findall(without_citations(text).lower())


def _runs(words: list[str], size: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def copied_from_earlier(
    text: str, earlier_answers: Iterable[str], *, sources: str, min_words: int = MIN_COPIED_WORDS
) -> str:
    """The first run of `min_words` words of `text` that an earlier answer holds and `sources` does not.

    Case, punctuation and citation markers are ignored. Returns "" when there is none.
    """
    words = _words(text)
    if len(words) < min_words:
        return ""
    earlier = set().union(*(_runs(_words(answer), min_words) for answer in earlier_answers))
    if not earlier:
        return ""
    grounded = _runs(_words(sources), min_words)
    for start in range(len(words) - min_words + 1):
        run = tuple(words[start : start + min_words])
        if run in earlier and run not in grounded:
            return " ".join(run)
    return ""
