"""What the service adds to an answer so that a reader can check it: quotes and citation warnings.

Generation is served by the vLLM stand-in (tests/bot/fake_vllm.py), so the answer's text is chosen by the
test; retrieval and storage are real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.service import Tanya
from bot.settings import Settings
from retrieval.answering.checks import NO_ANSWER_TEXT, Change
from retrieval.answering.prompt import SYSTEM_PROMPT
from storage.interactions import get_interaction
from tests.bot.fake_vllm import BASE_MODEL, FakeVllm

QUESTION = "How many days of annual leave do employees get?"
LEAVE = (
    "# Annual leave\n\nLeave requests go to your manager. Every employee gets 24 days of annual leave a "
    "year. Unused days expire in March.\n"
)


@pytest.fixture
def bot(tmp_path: Path, vllm: FakeVllm) -> Iterator[Tanya]:
    settings = Settings(
        home=tmp_path / "home", generator=f"{vllm.url}/v1", generator_model=BASE_MODEL, min_similarity=-1.0
    )
    service = Tanya(settings)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text(LEAVE)
    service.ingest([docs])
    yield service
    service.database.dispose()


def _answering(vllm: FakeVllm, text: str) -> None:
    vllm.answer_for = lambda model: text  # type: ignore[method-assign]


def test_sources_quote_the_sentence_that_answers(bot: Tanya, vllm: FakeVllm) -> None:
    _answering(vllm, "24 days [1].")
    answer = bot.ask(QUESTION)
    assert answer.sources[0].excerpt.startswith("Every employee gets 24 days of annual leave a year.")
    assert answer.as_json()["sources"][0]["excerpt"] == answer.sources[0].excerpt
    assert answer.notices == [] and answer.as_json()["notices"] == []


def test_citing_a_source_that_was_not_given_is_flagged(bot: Tanya, vllm: FakeVllm) -> None:
    _answering(vllm, "24 days [1], or 30 in Bali [4] [7] [4].")
    answer = bot.ask(QUESTION)
    assert len(answer.sources) == 1
    assert answer.notices == [
        "The answer cites [4], [7], but there is only 1 source: that part is made up. "
        "Check it against the quotes under the sources."
    ]
    assert answer.as_json()["notices"] == answer.notices
    assert answer.text == "24 days [1], or 30 in Bali [4] [7] [4].", "the answer itself is left as written"


ECHO = f"Question: {QUESTION}\nAnswer in one sentence from the sources and cite the source number like [1]."


def test_an_echoed_prompt_is_removed_before_it_is_shown_or_stored(bot: Tanya, vllm: FakeVllm) -> None:
    _answering(vllm, f"{ECHO}\nEvery employee gets 24 days [1].")
    streamed: list[str] = []
    answer = bot.ask(QUESTION, streaming_callback=lambda chunk: streamed.append(chunk.content or ""))
    assert "Answer in one sentence" in "".join(streamed), "the stream shows what the model wrote"
    assert answer.text == "Every employee gets 24 days [1]." and answer.changed(Change.ECHO_REMOVED)
    with bot.database.session() as session:
        stored = get_interaction(session, answer.interaction_id)
        assert stored is not None and stored.answer == answer.text, "training must not learn the echo"


def test_a_reply_that_is_only_the_echo_says_so_and_gets_no_borrowed_citation(
    bot: Tanya, vllm: FakeVllm
) -> None:
    _answering(vllm, ECHO)
    answer = bot.ask(QUESTION)
    assert answer.found and answer.changed(Change.ECHO_REMOVED)
    # The instruction's "[1]" was not taken for the model citing a source.
    assert answer.text == NO_ANSWER_TEXT and not answer.changed(Change.CITATION_ADDED)
    assert len(answer.sources) == 1


def test_the_untrained_gemma_echo_of_system_prompt_and_first_source_leaves_no_answer(
    bot: Tanya, vllm: FakeVllm
) -> None:
    _answering(vllm, "24 days [1].")
    first = bot.ask(QUESTION)
    with bot.database.session() as session:
        stored = get_interaction(session, first.interaction_id)
        assert stored is not None
        prompt = json.loads(stored.prompt)[-1]["content"]
    listing = next(line for line in prompt.splitlines() if line.startswith("[1] "))
    # The copy is cut by the token limit mid-entry, as the base Gemma's was.
    _answering(vllm, f"{SYSTEM_PROMPT}\n\nSources:\n{listing[:60]}")
    answer = bot.ask(QUESTION)
    assert answer.changed(Change.ECHO_REMOVED) and answer.text == NO_ANSWER_TEXT
    assert answer.sources[0].excerpt.startswith("Every employee gets 24 days")


def _turns_in_last_request(vllm: FakeVllm) -> int:
    return len(vllm.calls("/v1/chat/completions")[-1]["messages"])


UNGROUNDED = "Leave is approved by the people team within one week of the request [1]."


def test_a_follow_up_that_repeats_the_last_answer_is_answered_again_without_the_thread(
    bot: Tanya, vllm: FakeVllm
) -> None:
    # With the thread in the prompt (system, user, assistant, user) the model repeats itself.
    vllm.answer_for = lambda model: UNGROUNDED if _turns_in_last_request(vllm) > 2 else "In March [1]."  # type: ignore[method-assign]
    streamed: list[str] = []
    answer = bot.ask(
        "When do unused days expire?",
        history=[(QUESTION, UNGROUNDED)],
        streaming_callback=lambda chunk: streamed.append(chunk.content or ""),
    )
    assert answer.text == "In March [1]." and answer.changed(Change.HISTORY_DROPPED)
    assert "people team" in "".join(streamed), "only the first reply streams"
    with bot.database.session() as session:
        stored = get_interaction(session, answer.interaction_id)
        assert stored is not None and stored.answer == "In March [1]."
        # What is stored for training is the prompt that produced the answer: without the thread.
        assert [m["role"] for m in json.loads(stored.prompt)] == ["system", "user"]


def test_a_follow_up_may_repeat_what_its_sources_say(bot: Tanya, vllm: FakeVllm) -> None:
    grounded = "Every employee gets 24 days of annual leave a year [1]."
    _answering(vllm, grounded)
    answer = bot.ask("And how many days do part-timers get?", history=[(QUESTION, grounded)])
    assert answer.text == grounded and not answer.changed(Change.HISTORY_DROPPED)
    assert len(vllm.calls("/v1/chat/completions")) == 1
    assert _turns_in_last_request(vllm) == 4, "the thread was in the prompt"
