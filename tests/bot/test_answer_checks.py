"""What the service adds to an answer so that a reader can check it: quotes and citation warnings.

Generation is served by the vLLM stand-in (tests/bot/fake_vllm.py), so the answer's text is chosen by the
test; retrieval and storage are real.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.service import Tanya
from bot.settings import Settings
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
