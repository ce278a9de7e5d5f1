"""The passage of a source that a question is about, quoted next to the source.

An answer from a small model can be vague or wrong while its sources are right. Showing, under each
source, the sentence that best matches the question lets a reader check the answer, or find it, without
opening the document. This is extractive and lexical on purpose: it runs on every answer in
microseconds, needs no model, and quotes the document exactly, so it can never invent anything.

Sentences are scored by the question words they contain, each word weighted by how rare it is among the
passage's sentences (a word in every sentence tells nothing about which one to quote). Words of one or
two letters and the commonest function words of English and Indonesian (the languages tanya is measured
on) are ignored: in a three-sentence passage, a shared "the" would otherwise outweigh the one rare word
that matters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection

DEFAULT_EXCERPT_CHARS = 240

_WORD = re.compile(r"\w{3,}", re.UNICODE)
_FUNCTION_WORDS = frozenset(
    "the and are was were has have had for from with that this what which who whom whose when where why how "
    "does did can could will would should not but its into about than then them they their there these those "
    "yang dan dari untuk dengan pada dalam adalah ini itu apa siapa kapan mana bagaimana mengapa berapa "
    "oleh juga atau akan sudah tidak ada bisa karena".split()
)
# A sentence ends at . ! ? or … followed by space, or at a line break (Markdown lists, headings, tables).
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\s*\n+\s*")
_MARKDOWN_NOISE = re.compile(r"^(?:#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s*|\|)+")


def _words(text: str) -> set[str]:
    return {word.casefold() for word in _WORD.findall(text)} - _FUNCTION_WORDS


def _sentences(text: str) -> list[str]:
    pieces = (_MARKDOWN_NOISE.sub("", piece).strip() for piece in _SENTENCE_END.split(text))
    return [piece for piece in pieces if _WORD.search(piece)]


def _clip(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text.rfind(" ", 0, max_chars)
    cut = cut if cut > max_chars // 2 else max_chars - 1
    return text[:cut].rstrip(" ,;:") + "…"


def best_excerpt(
    question: str,
    passage: str,
    *,
    max_chars: int = DEFAULT_EXCERPT_CHARS,
    quoted: Collection[str] = (),
) -> str:
    """The sentence of `passage` that shares the most (rare) words with `question`, at most `max_chars`.

    The sentences after the best one are added while they fit, because an answer is often in the sentence
    that follows the one repeating the question's words. Returns "" for a passage
    with no words; a passage that shares nothing with the question yields its first sentence.

    `quoted` holds the excerpts already shown for better-ranked sources. Overlapping chunks of one file
    share sentences, and two sources quoting the same words tell the reader nothing new, so a sentence
    inside one of them is passed over unless nothing else is left.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    sentences = _sentences(passage)
    if not sentences:
        return ""
    asked = _words(question)
    sentence_words = [_words(sentence) for sentence in sentences]
    count = len(sentences)

    def weight(word: str) -> float:
        containing = sum(1 for words in sentence_words if word in words)
        return math.log(1 + count / containing)

    weights = {word: weight(word) for word in asked if any(word in words for words in sentence_words)}
    scores = [sum(weights.get(word, 0.0) for word in words & asked) for words in sentence_words]
    shown = [" ".join(text.split()) for text in quoted]
    fresh = [
        index
        for index in range(count)
        if not any(" ".join(sentences[index].split()) in text for text in shown)
    ]
    best = max(fresh or range(count), key=lambda index: (scores[index], -index))
    excerpt = sentences[best]
    for following in sentences[best + 1 :]:
        if len(excerpt) + 1 + len(following) > max_chars:
            break
        excerpt = f"{excerpt} {following}"
    excerpt = " ".join(excerpt.split())
    if best == 0 and excerpt[0].islower():
        excerpt = "…" + excerpt  # the chunk starts mid-sentence
    return _clip(excerpt, max_chars)
