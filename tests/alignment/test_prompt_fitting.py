"""Fitting a long prompt into the training length: what is dropped, in which order, and how it is renumbered."""

from __future__ import annotations

from collections.abc import Sequence

from alignment.prompt_fitting import Fit, excerpt_around, fit_to_length
from alignment.regression import grounded_messages
from retrieval.answering.prompt import SourceList, cited_numbers


def _chars(messages: list[dict[str, str]], completions: Sequence[str]) -> int:
    """A length measure in characters, so each case can be reasoned about exactly."""
    return sum(len(message["content"]) for message in messages) + max(len(text) for text in completions)


def _sources(messages: list[dict[str, str]]) -> dict[int, str]:
    return dict(SourceList.parse(messages[-1]["content"]).entries)


PASSAGES = [(f"doc {n}", f"Passage {n}. " + "filler words here. " * 20) for n in range(1, 6)]


def test_a_row_that_fits_is_returned_unchanged() -> None:
    messages = grounded_messages("What?", PASSAGES[:1])
    fitted = fit_to_length(messages, ["It [1]."], max_length=10_000, length_of=_chars)
    assert fitted is not None and fitted.changes == () and fitted.messages == messages


def test_uncited_sources_go_first_weakest_first_and_citations_follow_the_new_numbers() -> None:
    messages = grounded_messages("What does passage 4 say?", PASSAGES)
    full = _chars(messages, ["Passage 4 [4]."])
    one_source = len(PASSAGES[0][1]) + 10
    fitted = fit_to_length(messages, ["Passage 4 [4]."], max_length=full - 2 * one_source, length_of=_chars)
    assert fitted is not None and fitted.changes == (Fit.SOURCES_DROPPED,)
    sources = _sources(fitted.messages)
    # 5 went first (weakest), then 3; 1, 2 stay as distractors and 4 is now [3].
    assert [text.split(":")[0] for text in sources.values()] == ["doc 1", "doc 2", "doc 4"]
    assert cited_numbers(fitted.completions[0]) == [3]
    assert fitted.messages[-1]["content"].endswith(messages[-1]["content"].split("Question: ")[1])


def test_a_pair_keeps_the_sources_both_answers_cite() -> None:
    messages = grounded_messages("Which?", PASSAGES)
    fitted = fit_to_length(messages, ["Two [2].", "Five [5]."], max_length=1000, length_of=_chars)
    assert fitted is not None
    assert [text.split(":")[0] for text in _sources(fitted.messages).values()] == ["doc 2", "doc 5"]
    assert fitted.completions == ("Two [1].", "Five [2].")


def test_history_goes_after_the_uncited_sources_then_the_cited_source_is_cut_around_the_answer() -> None:
    long_text = "Opening remarks. " * 60 + "The launch date is 12 March. " + "Closing remarks. " * 60
    messages = grounded_messages("When is the launch?", [("plan", long_text), *PASSAGES[:2]])
    messages.insert(1, {"role": "user", "content": "earlier question " * 10})
    messages.insert(2, {"role": "assistant", "content": "earlier answer " * 10})
    fitted = fit_to_length(messages, ["On 12 March [1]."], max_length=700, length_of=_chars)
    assert fitted is not None
    assert fitted.changes == (Fit.SOURCES_DROPPED, Fit.HISTORY_DROPPED, Fit.SOURCES_SHORTENED)
    assert [message["role"] for message in fitted.messages] == ["system", "user"]
    (kept,) = _sources(fitted.messages).values()
    assert kept.startswith("plan: …") and "The launch date is 12 March." in kept and kept.endswith("…")
    assert _chars(fitted.messages, fitted.completions) <= 700


def test_a_row_whose_question_alone_is_too_long_cannot_be_fitted() -> None:
    messages = grounded_messages("Why? " + "x " * 2000, PASSAGES[:1])
    assert fit_to_length(messages, ["Because [1]."], max_length=800, length_of=_chars) is None


def test_an_uncited_answer_keeps_the_best_ranked_source() -> None:
    messages = grounded_messages("What?", PASSAGES)
    fitted = fit_to_length(messages, ["Nobody knows."], max_length=600, length_of=_chars)
    assert fitted is not None
    assert [text.split(":")[0] for text in _sources(fitted.messages).values()] == ["doc 1"]


def test_excerpt_keeps_the_title_and_falls_back_to_the_beginning() -> None:
    text = "Title: " + "a" * 500
    assert excerpt_around(text, "not there", 100).startswith("Title: aaaa")
    assert len(excerpt_around(text, "not there", 100)) <= 105
    assert excerpt_around("short", "x", 100) == "short"
