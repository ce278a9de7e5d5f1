"""Citations for corrections: a person's better answer, cited like the bot's own answers.

People correcting the bot write the answer ("136", "Kawann Short"), not "[1]". Trained on such rows,
the adapter would learn to stop citing, and answers in Slack must point at a source to be checkable.
When the correction's words appear in one of the sources the answer was given, that source's number is
appended, exactly as the bot numbers them; a correction that no source states is left as written.
"""

from __future__ import annotations

from collections.abc import Sequence

from alignment.feedback import normalize_question
from retrieval.answering.prompt import CITATION, parse_sources


def numbered_sources(messages: Sequence[dict[str, str]]) -> dict[int, str]:
    """The sources of the last user turn, by their number (the grounded prompt's own list)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return parse_sources(message.get("content", ""))
    return {}


def cite_correction(text: str, messages: Sequence[dict[str, str]]) -> str:
    """``text`` with `` [n]`` appended for the first source that states it, unless it cites already."""
    if CITATION.search(text):
        return text
    wanted = normalize_question(text)
    if not wanted:
        return text
    for number, source in sorted(numbered_sources(messages).items()):
        if f" {wanted} " in f" {normalize_question(source)} ":
            return f"{text.rstrip()} [{number}]"
    return text
