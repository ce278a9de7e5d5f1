"""Fitting a rated answer's prompt into the training length instead of throwing the answer away.

Answers over long documents (wiki pages, Indonesian articles, which tokenise long) come with prompts of
five long sources; with the answer they often exceed the training length. Such an answer is still the
team's most valuable feedback, and what makes it trainable is in a small part of the prompt: the
question, the answer, and the source the answer cites. So the prompt is shortened in the order that
loses least:

1. sources the answer does not cite, weakest (last) first — the remaining ones stay as distractors;
2. earlier turns of the thread, oldest first;
3. the cited sources themselves, cut to a window around the words of the answer.

Sources keep their order and are numbered 1…n again, and the citations in the completions are rewritten
to match, so a fitted row reads exactly like a prompt the template wrote. A row that still does not fit
(a giant question) is left out, and the caller counts it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from retrieval.answering.prompt import CITATION, SourceList, cited_numbers, strip_citations

Messages = list[dict[str, str]]
# (messages, completions) -> prompt tokens + the longest completion's tokens
LengthOf = Callable[[Messages, Sequence[str]], int]

_MIN_SOURCE_CHARS = 160
_WORD = re.compile(r"\w+", re.UNICODE)
_SHORTEN_ATTEMPTS = 8


class Fit(StrEnum):
    """What fitting did to a row (the run summary counts rows per kind)."""

    SOURCES_DROPPED = "sources_dropped"
    HISTORY_DROPPED = "history_dropped"
    SOURCES_SHORTENED = "sources_shortened"


@dataclass(frozen=True)
class FittedRow:
    """A row's messages and completions after fitting, and what was changed to get there."""

    messages: Messages
    completions: tuple[str, ...]
    changes: tuple[Fit, ...]


@dataclass
class _Draft:
    system: Messages
    history: Messages
    user: dict[str, str]
    sources: SourceList
    entries: list[tuple[int, str]]

    def render(self, completions: Sequence[str]) -> tuple[Messages, tuple[str, ...]]:
        numbering = {old: new for new, (old, _) in enumerate(self.entries, start=1)}
        listed = SourceList(
            head=self.sources.head,
            entries=tuple((numbering[old], text) for old, text in self.entries),
            tail=self.sources.tail,
        )
        user = {**self.user, "content": listed.render()} if self.sources.entries else self.user
        return [*self.system, *self.history, user], tuple(_renumber(text, numbering) for text in completions)


def fit_to_length(
    messages: Sequence[dict[str, str]], completions: Sequence[str], *, max_length: int, length_of: LengthOf
) -> FittedRow | None:
    """The row shortened until ``length_of`` is at most ``max_length``, or None when it cannot be."""
    plain = [dict(message) for message in messages]
    if length_of(plain, completions) <= max_length:
        return FittedRow(plain, tuple(completions), ())
    draft = _draft(plain)
    if draft is None:
        return None
    changes: list[Fit] = []

    def fits() -> bool:
        rendered, texts = draft.render(completions)
        return length_of(rendered, texts) <= max_length

    kept = _protected(draft, completions)
    for number in [number for number, _ in reversed(draft.entries) if number not in kept]:
        draft.entries = [entry for entry in draft.entries if entry[0] != number]
        _note(changes, Fit.SOURCES_DROPPED)
        if fits():
            return _done(draft, completions, changes)
    while draft.history:
        draft.history = draft.history[2:] if len(draft.history) >= 2 else []
        _note(changes, Fit.HISTORY_DROPPED)
        if fits():
            return _done(draft, completions, changes)
    answer = strip_citations(completions[0]).strip() if completions else ""
    for _ in range(_SHORTEN_ATTEMPTS):
        rendered, texts = draft.render(completions)
        over = length_of(rendered, texts) - max_length
        if over <= 0:
            return _done(draft, completions, changes)
        if not _shorten_longest(draft, answer, over):
            return None
        _note(changes, Fit.SOURCES_SHORTENED)
    return _done(draft, completions, changes) if fits() else None


def _draft(messages: Messages) -> _Draft | None:
    users = [index for index, message in enumerate(messages) if message.get("role") == "user"]
    if not users:
        return None
    last = users[-1]
    system = [message for message in messages[:last] if message.get("role") == "system"]
    history = [message for message in messages[:last] if message.get("role") != "system"]
    sources = SourceList.parse(messages[last].get("content", ""))
    return _Draft(system, history, messages[last], sources, list(sources.entries))


def _protected(draft: _Draft, completions: Sequence[str]) -> set[int]:
    """The sources any completion cites; without a citation, the best-ranked one."""
    numbers = {number for number, _ in draft.entries}
    cited = {number for text in completions for number in cited_numbers(text)} & numbers
    if cited or not draft.entries:
        return cited
    return {draft.entries[0][0]}


def _shorten_longest(draft: _Draft, answer: str, over_tokens: int) -> bool:
    """Cut the longest source by about ``over_tokens`` (plus a margin), around the answer's words."""
    if not draft.entries:
        return False
    index = max(range(len(draft.entries)), key=lambda item: len(draft.entries[item][1]))
    number, text = draft.entries[index]
    if len(text) <= _MIN_SOURCE_CHARS:
        return False
    # About four characters a token for the tokenisers here; a 20 % margin saves a round of tokenising.
    target = max(_MIN_SOURCE_CHARS, len(text) - int(over_tokens * 4 * 1.2) - 8)
    draft.entries[index] = (number, excerpt_around(text, answer, target))
    return True


def excerpt_around(text: str, answer: str, max_chars: int) -> str:
    """``text`` cut to about ``max_chars``, keeping its title and a window centred on ``answer``."""
    if len(text) <= max_chars:
        return text
    title, separator, body = text.partition(": ")
    if not separator or len(title) > 120:
        title, separator, body = "", "", text
    room = max(40, max_chars - len(title) - len(separator) - 2)
    where, found = _anchor(body, answer)
    start = 0 if where < 0 else max(0, where - (room - found) // 2)
    start = min(start, max(0, len(body) - room))
    window = body[start : start + room].strip()
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + room < len(body) else ""
    return f"{title}{separator}{prefix}{window}{suffix}"


def _anchor(body: str, answer: str) -> tuple[int, int]:
    """Where the answer's words stand in ``body``: the longest run of them found, as (offset, length).

    An answer rephrases its source ("On 12 March" for "… is 12 March."), so the whole answer is seldom
    there, but its longest shared run of words almost always is. (-1, 0) when no word of 4+ letters is.
    """
    words = _WORD.findall(answer)
    folded = body.casefold()
    for size in range(len(words), 0, -1):
        for first in range(len(words) - size + 1):
            phrase = " ".join(words[first : first + size]).casefold()
            if size == 1 and len(phrase) < 4:
                continue
            where = folded.find(phrase)
            if where >= 0:
                return where, len(phrase)
    return -1, 0


def _renumber(text: str, numbering: dict[int, int]) -> str:
    """Citations rewritten through ``numbering``; a number not in it (an unknown source) is left as is."""

    def rewrite(match) -> str:
        numbers = [int(part) for part in match.group(1).replace(";", ",").split(",")]
        return "[" + ", ".join(str(numbering.get(number, number)) for number in numbers) + "]"

    return CITATION.sub(rewrite, text)


def _note(changes: list[Fit], change: Fit) -> None:
    if change not in changes:
        changes.append(change)


def _done(draft: _Draft, completions: Sequence[str], changes: list[Fit]) -> FittedRow:
    messages, texts = draft.render(completions)
    return FittedRow(messages, texts, tuple(changes))
