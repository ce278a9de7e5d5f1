"""The checks applied to what the model wrote, before anyone reads it, and the list of what they changed.

Every answer passes through here: the product's (``retrieval.answering.pipeline``), the evaluation gate's
(``alignment.answer_quality``) and so the closed-loop benchmark's. A gate that scored the raw model output
would judge answers no user ever sees.

* **Prompt echo.** A small model sometimes continues the prompt instead of answering it. SmolLM2 writes
  "Question: How do I …? Answer in one sentence from the sources and cite the source number like [1]."
  before (or instead of) its answer; the base Gemma 3 270M, before any adapter has taught it turns,
  repeats the system prompt, "Sources:" and the first numbered source. Shown, that reads as the bot
  talking to itself; stored, it would teach the next adapter to do the same; and the instruction's "[1]"
  would pass for a citation. Only the prompt's exact words are removed (case and spacing aside), so an
  answer that merely mentions the question's topic is left alone.
* **No answer.** When nothing is left, the reply says so (``NO_ANSWER_TEXT``) rather than posting nothing.
* **Citation fallback.** If the model used sources but names none as ``[n]``, ``[1]`` is appended. This is a
  pointer, not a claim that the model used that source: a Slack answer without one cannot be checked.
* **Unknown citations.** A cited number that no source has is a small model's tell that it is making
  things up; it is reported so the reader can be warned.
* **Copied from the thread** (``copied_from_earlier``). A small model in a thread often says again what it
  said last, even when the new question is about something else. The test is a run of words that an
  earlier answer holds and the current sources do not. The pipeline then answers again without the thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from retrieval.answering.prompt import (
    ANSWER_INSTRUCTION,
    SYSTEM_PROMPT,
    cited_numbers,
    parse_sources,
    strip_citations,
)

NO_ANSWER_TEXT = (
    "I found sources that may answer this, but could not write an answer from them. "
    "Check the sources below, or rephrase the question."
)

# What a model taught to be honest answers when its sources do not hold the answer, per language of the
# question (the starter adapter is trained to write exactly these). Such a reply cites nothing on
# purpose, so the citation fallback leaves it alone.
NOT_IN_DOCUMENTS = {
    "en": "The documents do not say.",
    "id": "Dokumen tidak menyebutkan hal ini.",
}
_NOT_IN_DOCUMENTS_KEYS = tuple(
    " ".join(re.findall(r"\w+", text.casefold())) for text in NOT_IN_DOCUMENTS.values()
)

# Six words repeat by chance ("you can find it in the"); eight in a row rarely do. The copies seen run
# for nine words or more.
MIN_COPIED_WORDS = 8
# A shorter copy ("[1] Yes.") could match the start of a source entry by chance.
_MIN_LISTING_CHARS = 20
_QUESTION_LABEL = r"(?:question|pertanyaan)\s*:\s*"
_ANSWER_LABEL = re.compile(r"^\s*(?:answer|jawaban)\s*:\s*", re.IGNORECASE)
_SOURCES_LABEL = re.compile(r"^\s*(?:sources|sumber)\s*:\s*$", re.IGNORECASE | re.MULTILINE)
_LISTING = re.compile(r"^\[\d{1,3}\] ")
_WORD = re.compile(r"\w+")


class Change(StrEnum):
    """What a check did to an answer, or found in it."""

    ECHO_REMOVED = "echo_removed"  # words copied from the prompt were taken out
    NO_ANSWER = "no_answer"  # nothing but the prompt was left: the reply is NO_ANSWER_TEXT
    CITATION_ADDED = "citation_added"  # the model cited nothing, so the top source's [1] was appended
    UNKNOWN_CITATIONS = "unknown_citations"  # cited numbers no source has (``detail``: "[7], [9]")
    HISTORY_DROPPED = (
        "history_dropped"  # the first reply repeated the thread; this one was written without it
    )


@dataclass(frozen=True)
class AnswerChange:
    """One thing a check did; ``detail`` says what exactly (the cited numbers, the copied words)."""

    kind: Change
    detail: str = ""


@dataclass(frozen=True)
class CheckedAnswer:
    """The answer as it will be shown and stored, and every change made on the way."""

    text: str
    changes: list[AnswerChange] = field(default_factory=list)


def says_not_in_documents(text: str) -> bool:
    """Whether ``text`` is the honest "the documents do not say" reply, in any language tanya knows."""
    words = " ".join(re.findall(r"\w+", strip_citations(text).casefold()))
    return any(words.startswith(key) for key in _NOT_IN_DOCUMENTS_KEYS)


def check_answer(
    reply: str, *, question: str, prompt: str, source_count: int, no_answer_text: str = NO_ANSWER_TEXT
) -> CheckedAnswer:
    """Applies the checks in order to a reply written from ``source_count`` numbered sources.

    ``prompt`` is the rendered user message that listed the sources. The echo goes first: the
    instruction's own "[1]" must not pass for a citation.
    """
    changes: list[AnswerChange] = []
    text, echoed = strip_prompt_echo(
        reply.strip(), question=question, prompt_texts=(SYSTEM_PROMPT, ANSWER_INSTRUCTION), prompt=prompt
    )
    if echoed:
        changes.append(AnswerChange(Change.ECHO_REMOVED))
    if not text:  # nothing but the prompt (it happens with tiny models): say so rather than post nothing
        return CheckedAnswer(no_answer_text, [*changes, AnswerChange(Change.NO_ANSWER)])
    if says_not_in_documents(text):
        return CheckedAnswer(text, changes)
    if source_count and not any(1 <= n <= source_count for n in cited_numbers(text)):
        text = f"{text.rstrip()} [1]"
        changes.append(AnswerChange(Change.CITATION_ADDED))
    if unknown := unknown_citations(text, source_count):
        changes.append(AnswerChange(Change.UNKNOWN_CITATIONS, ", ".join(f"[{n}]" for n in unknown)))
    return CheckedAnswer(text, changes)


def unknown_citations(text: str, source_count: int) -> list[int]:
    """The numbers that ``text`` cites but no source has, in order of first mention."""
    return [n for n in cited_numbers(text) if not 1 <= n <= source_count]


def _loose(text: str) -> str:
    """A pattern for ``text`` that ignores case (set by the caller), runs of spaces and a final full stop."""
    words = text.strip().rstrip(".").split()
    return r"\s+".join(re.escape(word) for word in words) + r"\.?"


def _listed_sources(prompt: str) -> list[str]:
    """The prompt's numbered source entries, each as "Title: text" and as "text", spaces collapsed."""
    entries = [" ".join(entry.split()) for entry in parse_sources(prompt).values()]
    return [form for entry in entries for form in (entry, entry.partition(": ")[2]) if form]


def _is_source_listing(line: str, listed: Sequence[str]) -> bool:
    """A line like "[2] Title: text…" copied from the start of a prompt's source entry.

    The model may drop the title, or be cut off mid-word by the token limit, so the copy only has to be
    the beginning of an entry, with or without its title.
    """
    marker = _LISTING.match(line.strip())
    if not marker:
        return False
    copied = " ".join(line.strip()[marker.end() :].split())
    return len(copied) >= _MIN_LISTING_CHARS and any(entry.startswith(copied) for entry in listed)


def strip_prompt_echo(
    text: str, *, question: str, prompt_texts: Sequence[str], prompt: str = ""
) -> tuple[str, bool]:
    """``text`` without echoed prompt words, and whether anything was removed.

    Removed: each of ``prompt_texts`` (the system prompt, the instruction) wherever it appears; a line
    that is only the question (after source numbers or a "Question:" label, if any); at the start, the
    question with or without a "Question:" label, and an "Answer:" label; a line that is only
    "Sources:"; a line that starts with a source number and copies the start of a source entry of
    ``prompt``. A sentence quoted from a source is an answer and stays: only the listing's
    "[n] Title: …" form is an echo. What is left may be empty: the model wrote nothing else, or only
    citation markers.
    """
    listed = _listed_sources(prompt)
    lines = text.splitlines()
    kept = [line for line in lines if not _is_source_listing(line, listed)]
    cleaned = text if len(kept) == len(lines) else "\n".join(kept)
    for fixed in prompt_texts:
        if fixed.strip():
            cleaned = re.sub(_loose(fixed), " ", cleaned, flags=re.IGNORECASE)
    # Only a labelled question is removed anywhere; a bare one only at the start, where it is an echo
    # rather than part of a sentence.
    if question.strip():
        # A line that is nothing but the question (numbered like a source, say) is an echo anywhere.
        alone = (
            r"^[^\S\n]*(?:\[\d{1,3}\][^\S\n]*)*(?:"
            + _QUESTION_LABEL
            + r")?"
            + _loose(question)
            + r"[^\S\n]*$"
        )
        cleaned = re.sub(alone, "", cleaned, flags=re.IGNORECASE | re.MULTILINE)
        cleaned = re.sub(_QUESTION_LABEL + _loose(question), " ", cleaned, flags=re.IGNORECASE)
        cleaned = re.sub(r"^\s*" + _loose(question), " ", cleaned, flags=re.IGNORECASE)
    cleaned = _SOURCES_LABEL.sub("", cleaned)
    cleaned = _ANSWER_LABEL.sub("", cleaned)
    if cleaned == text:
        return text, False
    lines = [re.sub(r"(?<=\S) {2,}(?=\S)", " ", line).strip() for line in cleaned.splitlines()]
    cleaned = "\n".join(line for line in lines if line)
    if not any(character.isalnum() for character in strip_citations(cleaned)):
        return "", True  # "[1]" after an echo cites nothing the model wrote
    return cleaned, True


def _words(text: str) -> list[str]:
    return _WORD.findall(strip_citations(text).lower())


def _runs(words: list[str], size: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def copied_from_earlier(
    text: str, earlier_answers: Iterable[str], *, sources: str, min_words: int = MIN_COPIED_WORDS
) -> str:
    """The first run of ``min_words`` words of ``text`` that an earlier answer holds and ``sources`` does not.

    Case, punctuation and citation markers are ignored; two answers that quote the same source sentence
    are fine. Returns "" when there is none.
    """
    words = _words(text)
    if len(words) < min_words:
        return ""
    earlier = set().union(*(_runs(_words(answer), min_words) for answer in earlier_answers))
    if not earlier:
        return ""
    grounded = _runs(_words(sources), min_words)
    for start in range(len(words) - min_words + 1):
        run = tuple(words[start : start + min_words])
        if run in earlier and run not in grounded:
            return " ".join(run)
    return ""
