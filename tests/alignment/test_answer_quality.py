"""The gate grades the answer a user would read: the model's reply after the product's answer checks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from alignment.answer_quality import AnswerWriter, written_answer_metrics
from retrieval.answering.checks import NO_ANSWER_TEXT
from retrieval.answering.prompt import SYSTEM_PROMPT, make_prompt_builder

QUESTION = "Who led the team in sacks?"


class _Scorer:
    """The part of ``alignment.evaluate.Scorer`` that ``AnswerWriter`` uses, with scripted replies."""

    def __init__(self, replies: dict[str, str]) -> None:
        self.replies = replies
        self.active = ""

    @contextlib.contextmanager
    def variant(self, name: str) -> Iterator[None]:
        self.active = name
        yield


class _Writer(AnswerWriter):
    def _generate(self, prompt: str) -> str:
        return self.scorer.replies[self.scorer.active]

    def reference(self, completion: str) -> str:
        return completion


def _row() -> dict[str, Any]:
    from haystack import Document

    documents = [
        Document(content="The Broncos won the game 24–10.", meta={"title": "Super Bowl 50"}),
        Document(content="Kawann Short led the team in sacks with 11.", meta={"title": "Panthers"}),
    ]
    user = make_prompt_builder().run(documents=documents, question=QUESTION)["prompt"][-1].text
    return {
        "prompt": f"<user>{user}<assistant>",
        "completion": "Kawann Short [2]",
        "question": QUESTION,
        "user_message": user,
    }


def test_an_echoed_prompt_is_graded_as_the_no_answer_text_users_see() -> None:
    writer = _Writer(_Scorer({"echo": f"{SYSTEM_PROMPT} Question: {QUESTION}"}), max_new_tokens=8)  # type: ignore[arg-type]
    assert writer.answer("echo", _row()) == NO_ANSWER_TEXT


def test_a_copied_source_entry_is_removed_before_grading() -> None:
    reply = "[2] Panthers: Kawann Short led the team in sacks with 11.\nKawann Short [2]"
    writer = _Writer(_Scorer({"candidate": reply}), max_new_tokens=8)  # type: ignore[arg-type]
    assert writer.answer("candidate", _row()) == "Kawann Short [2]"
    scores = written_answer_metrics(writer, "candidate", [_row()])
    assert scores["answer_exact"] == 100.0 and scores["answer_count"] == 1.0


def test_an_answer_without_a_citation_gets_the_fallback_as_in_the_product() -> None:
    writer = _Writer(_Scorer({"candidate": "Kawann Short"}), max_new_tokens=8)  # type: ignore[arg-type]
    assert writer.answer("candidate", _row()) == "Kawann Short [1]"
