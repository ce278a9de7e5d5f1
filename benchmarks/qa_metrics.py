"""SQuAD-style answer scores: exact match, token F1, and whether the answer contains or cites the gold.

Normalisation follows the SQuAD evaluation: lower-case, punctuation removed, the English articles a/an/the
removed, whitespace collapsed. Citation markers such as ``[1]`` or ``[1, 3]`` are stripped first, so an
answer is not penalised for citing. Every score is the maximum over the question's gold answers.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CITATION = re.compile(r"\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation) | {"“", "”", "‘", "’", "«", "»", "–", "—"}


def strip_citations(text: str) -> str:
    return CITATION.sub(" ", text)


def normalize_answer(text: str) -> str:
    text = unicodedata.normalize("NFKC", strip_citations(text)).lower()
    text = "".join(" " if char in _PUNCTUATION else char for char in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: Iterable[str]) -> float:
    normalized = normalize_answer(prediction)
    return max((float(normalized == normalize_answer(gold)) for gold in golds), default=0.0)


def _f1(prediction_tokens: Sequence[str], gold_tokens: Sequence[str]) -> float:
    common = Counter(prediction_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if not prediction_tokens or not gold_tokens:
        return float(prediction_tokens == gold_tokens)
    if overlap == 0:
        return 0.0
    precision = overlap / len(prediction_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Iterable[str]) -> float:
    tokens = normalize_answer(prediction).split()
    return max((_f1(tokens, normalize_answer(gold).split()) for gold in golds), default=0.0)


def contains_gold(prediction: str, golds: Iterable[str]) -> float:
    """1 when a gold answer appears in the answer as whole words (after normalisation)."""
    padded = f" {normalize_answer(prediction)} "
    return max(
        (float(f" {normalize_answer(gold)} " in padded) for gold in golds if gold.strip()), default=0.0
    )


def cited_numbers(text: str) -> set[int]:
    numbers: set[int] = set()
    for marker in CITATION.findall(text):
        numbers.update(int(part) for part in re.findall(r"\d+", marker))
    return numbers


@dataclass(frozen=True)
class AnswerScore:
    exact_match: float
    f1: float
    contains_gold: float
    cites_gold: float
    cites_any: float
    model_cited: float

    @staticmethod
    def mean(scores: Sequence[AnswerScore]) -> dict[str, float]:
        """Averages in percent, rounded to one decimal."""
        if not scores:
            return {}
        names = AnswerScore.__dataclass_fields__
        return {name: round(100 * sum(getattr(s, name) for s in scores) / len(scores), 1) for name in names}


def score_answer(
    text: str,
    golds: Sequence[str],
    source_ids: Sequence[str],
    gold_ids: Iterable[str],
    *,
    citation_added: bool,
) -> AnswerScore:
    """``source_ids`` are the answer's sources in the order they were numbered ([1] is the first)."""
    cited = cited_numbers(text)
    gold_positions = {number for number, source in enumerate(source_ids, 1) if source in set(gold_ids)}
    return AnswerScore(
        exact_match=exact_match(text, golds),
        f1=token_f1(text, golds),
        contains_gold=contains_gold(text, golds),
        cites_gold=float(bool(cited & gold_positions)),
        cites_any=float(bool(cited)),
        model_cited=float(bool(cited) and not citation_added),
    )
