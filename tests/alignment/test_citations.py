"""Corrections get the citation of the source that states them, as the bot's answers do."""

from __future__ import annotations

from alignment.citations import cite_correction, numbered_sources
from retrieval.answering.prompt import make_prompt_builder


def _messages(*passages: tuple[str, str]) -> list[dict[str, str]]:
    from haystack import Document

    documents = [Document(content=text, meta={"title": title}) for title, text in passages]
    built = make_prompt_builder().run(documents=documents, question="Who led the team in sacks?")["prompt"]
    return [{"role": message.role.value, "content": message.text or ""} for message in built]


MESSAGES = _messages(
    ("Super Bowl 50", "The Broncos won the game 24–10."),
    ("Panthers", "Pro Bowl defensive tackle Kawann Short led the team in sacks with 11."),
)


def test_the_prompt_sources_are_read_back_by_number() -> None:
    sources = numbered_sources(MESSAGES)
    assert sorted(sources) == [1, 2]
    assert "Kawann Short" in sources[2] and "Broncos" in sources[1]


def test_a_correction_stated_by_a_source_cites_it() -> None:
    assert cite_correction("Kawann Short", MESSAGES) == "Kawann Short [2]"
    assert cite_correction("kawann short.", MESSAGES) == "kawann short. [2]"  # case and punctuation aside


def test_a_correction_that_cites_or_that_no_source_states_is_left_alone() -> None:
    assert cite_correction("Kawann Short [1]", MESSAGES) == "Kawann Short [1]"
    assert cite_correction("Luke Kuechly", MESSAGES) == "Luke Kuechly"
    assert cite_correction("Short", MESSAGES) == "Short [2]"  # whole words only…
    assert cite_correction("Shor", MESSAGES) == "Shor"  # …never part of one
    assert cite_correction("anything", []) == "anything"
