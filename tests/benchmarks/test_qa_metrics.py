"""The closed-loop benchmark's answer scores behave like the SQuAD evaluation, citations aside."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from qa_metrics import AnswerScore, contains_gold, exact_match, score_answer, token_f1


def test_exact_match_ignores_case_punctuation_articles_and_citations() -> None:
    assert exact_match("The Denver Broncos [1].", ["Denver Broncos"]) == 1.0
    assert exact_match("Denver Broncos won", ["Denver Broncos"]) == 0.0
    assert exact_match("Carolina [2]", ["Denver Broncos", "Carolina"]) == 1.0  # best over the golds


def test_token_f1_is_partial_credit() -> None:
    assert token_f1("Denver [1]", ["Denver Broncos"]) == 2 * (1.0 * 0.5) / 1.5
    assert token_f1("[1]", ["Denver Broncos"]) == 0.0
    assert token_f1("Broncos of Denver", ["Denver Broncos"]) == 2 * (2 / 3 * 1.0) / (2 / 3 + 1.0)


def test_contains_gold_needs_whole_words() -> None:
    assert contains_gold("It was 136 sacks [1]", ["136"]) == 1.0
    assert contains_gold("It was 1361 sacks", ["136"]) == 0.0


def test_citations_are_checked_against_the_gold_passage_by_position() -> None:
    score = score_answer("Kawann Short [2]", ["Kawann Short"], ["p7", "p0"], ["p0"], citation_added=False)
    assert (score.exact_match, score.cites_gold, score.cites_any, score.model_cited) == (1.0, 1.0, 1.0, 1.0)
    appended = score_answer("Kawann Short [1]", ["Kawann Short"], ["p7", "p0"], ["p0"], citation_added=True)
    assert (appended.cites_gold, appended.cites_any, appended.model_cited) == (0.0, 1.0, 0.0)
    assert AnswerScore.mean([score, appended])["cites_gold"] == 50.0
