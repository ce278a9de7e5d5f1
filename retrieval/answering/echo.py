"""Removes the prompt's own words from a reply: its fixed texts, a restated question, bare labels.

A small model sometimes continues the prompt instead of answering it. SmolLM2 writes "Question: How do I
…? Answer in one sentence from the sources and cite the source number like [1]." before (or instead of)
its answer; the base Gemma 3 270M, before any adapter has taught it turns, repeats the system prompt,
"Sources:" and the first numbered source. Shown to a user, that reads as the bot talking to itself;
stored, it would teach the next adapter to do the same; and the instruction's "[1]" would pass for a
citation. Only the prompt's exact words are removed (case and spacing aside), so an answer that merely
mentions the question's topic is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval.answering.citations import without_citations

_QUESTION_LABEL = r"(?:question|pertanyaan)\s*:\s*"
_ANSWER_LABEL = re.compile(r"^\s*(?:answer|jawaban)\s*:\s*", re.IGNORECASE)
_SOURCES_LABEL = re.compile(r"^\s*(?:sources|sumber)\s*:\s*$", re.IGNORECASE | re.MULTILINE)
_LISTING = re.compile(r"^\[\d{1,3}\] ", re.MULTILINE)
# A shorter copy ("[1] Yes.") could match the start of an entry by chance.
_MIN_LISTING_CHARS = 20


def _loose(text: str) -> str:
    """A pattern for `text` that ignores case (set by the caller), runs of spaces and a final full stop."""
    words = text.strip().rstrip(".").split()
    return r"\s+".join(re.escape(word) for word in words) + r"\.?"


def _listed_sources(prompt: str) -> list[str]:
    """The prompt's numbered source entries, each as "Title: text" and as "text", spaces collapsed."""
    entries = [" ".join(entry.split()) for entry in _LISTING.split(prompt)[1:]]
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
    """`text` without echoed prompt words, and whether anything was removed.

    Removed: each of `prompt_texts` (the system prompt, the instruction) wherever it appears; a line
    that is only the question (after source numbers or a "Question:" label, if any); at the start, the
    question with or without a "Question:" label, and an "Answer:" label; a line that is only
    "Sources:"; a line that starts with a source number and copies the start of a source entry of
    `prompt` (the rendered message with the numbered sources). A sentence quoted from a source is an
    answer and stays: only the listing's "[n] Title: …" form is an echo. What is left may be empty: the
    model wrote nothing else, or only citation markers.
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
    if not any(character.isalnum() for character in without_citations(cleaned)):
        return "", True  # "[1]" after an echo cites nothing the model wrote
    return cleaned, True
