"""How close a generated answer is to an approved one: SQuAD-style exact match, token F1, containment.

The evaluation gate generates answers and compares them with the held-out corrections, and the
closed-loop benchmark scores answers against gold spans the same way, so both use these functions.
Normalisation follows the SQuAD evaluation (lower-case, punctuation and the English articles a/an/the
removed, whitespace collapsed) after stripping citation markers such as ``[1]`` or ``[1, 3]``: citing a
source is not part of being right.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

from retrieval.answering.prompt import strip_citations

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation) | {"“", "”", "‘", "’", "«", "»", "–", "—"}


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation, after the citation markers are taken out."""
    text = unicodedata.normalize("NFKC", strip_citations(text)).lower()
    text = "".join(" " if char in _PUNCTUATION else char for char in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: Iterable[str]) -> float:
    """1 when the answer equals a gold answer after normalisation."""
    normalized = normalize_answer(prediction)
    return max((float(normalized == normalize_answer(gold)) for gold in golds), default=0.0)


def _f1(prediction_tokens: Sequence[str], gold_tokens: Sequence[str]) -> float:
    if not prediction_tokens or not gold_tokens:
        return float(prediction_tokens == gold_tokens)
    overlap = sum((Counter(prediction_tokens) & Counter(gold_tokens)).values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(prediction_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Iterable[str]) -> float:
    """Best token F1 over the gold answers (0 to 1)."""
    tokens = normalize_answer(prediction).split()
    return max((_f1(tokens, normalize_answer(gold).split()) for gold in golds), default=0.0)


def contains_gold(prediction: str, golds: Iterable[str]) -> float:
    """1 when a gold answer appears in the answer as whole words (after normalisation)."""
    padded = f" {normalize_answer(prediction)} "
    return max(
        (float(f" {normalize_answer(gold)} " in padded) for gold in golds if gold.strip()), default=0.0
    )
