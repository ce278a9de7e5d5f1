"""SQuAD-style answer scores: exact match, token F1, and whether the answer contains or cites the gold.

The answer-versus-gold scores are the ones the evaluation gate uses (``alignment/answer_match.py``:
SQuAD normalisation, citation markers stripped); this module adds the citation scores, which need the
answer's numbered sources. Every score is the maximum over the question's gold answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from alignment.answer_match import contains_gold, exact_match, normalize_answer, token_f1
from retrieval.answering.prompt import cited_numbers

__all__ = [
    "AnswerScore",
    "cited_numbers",
    "contains_gold",
    "exact_match",
    "normalize_answer",
    "score_answer",
    "token_f1",
]


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
    cited = set(cited_numbers(text))
    gold_positions = {number for number, source in enumerate(source_ids, 1) if source in set(gold_ids)}
    return AnswerScore(
        exact_match=exact_match(text, golds),
        f1=token_f1(text, golds),
        contains_gold=contains_gold(text, golds),
        cites_gold=float(bool(cited & gold_positions)),
        cites_any=float(bool(cited)),
        model_cited=float(bool(cited) and not citation_added),
    )
