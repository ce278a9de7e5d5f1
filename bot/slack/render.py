"""Block Kit for everything tanya posts in a conversation.

Everything the model or a document supplies is escaped before it reaches mrkdwn: an answer that happens
to contain ``<!channel>`` must not ping a channel. Limits that Slack enforces by rejecting the whole
message (3,000 characters per section, 50 blocks) are respected here rather than discovered in production.
"""

from __future__ import annotations

from typing import Any

from bot.service import Answer, Source
from bot.slack.text import escape, shorten

SECTION_LIMIT = 3000
MAX_SOURCES = 10
EXCERPT_CHARS = 200

VOTE_UP = "tanya_vote_up"
VOTE_DOWN = "tanya_vote_down"
SUGGEST = "tanya_suggest"
SUGGEST_VIEW = "tanya_suggest_view"
SUGGEST_BLOCK = "suggestion"
SUGGEST_INPUT = "text"

Block = dict[str, Any]


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(*texts: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text} for text in texts]}


def _chunks(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Split on paragraph or line boundaries where possible so each section stays under Slack's limit."""
    chunks: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n\n", 0, limit), text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut if cut > limit // 2 else limit
        chunks.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        chunks.append(text)
    return chunks


def answer_sections(text: str) -> list[Block]:
    return [_section(chunk) for chunk in _chunks(escape(text.strip()))] or [_section("_(no answer)_")]


def source_line(source: Source) -> str:
    title = escape(shorten(source.title, 150)) or "untitled"
    where = source.source.strip()
    if where.startswith(("http://", "https://")) and "|" not in where and ">" not in where:
        return f"`{source.number}` <{where}|{title}>"
    where = escape(shorten(where, 200))
    return f"`{source.number}` *{title}*" + (f" — _{where}_" if where else "")


def source_quote(source: Source) -> str:
    """The matching passage as a Slack quote line; the document's text is escaped like an answer's."""
    excerpt = shorten(source.excerpt, EXCERPT_CHARS)
    return f"\n>{escape(excerpt)}" if excerpt else ""


def sources_block(sources: list[Source]) -> Block | None:
    """Sources, each with its matching passage quoted.

    Slack rejects the whole message when a section passes 3,000 characters, so quotes are dropped from
    the last source up, and then the last sources, until it fits.
    """
    lines = [source_line(source) for source in sources[:MAX_SOURCES]]
    quotes = [source_quote(source) for source in sources[:MAX_SOURCES]]

    def text() -> str:
        entries = [line + (quotes[index] if index < len(quotes) else "") for index, line in enumerate(lines)]
        return "*Sources*\n" + "\n".join(entries)

    while len(text()) > SECTION_LIMIT and quotes:
        quotes.pop()
    while len(text()) > SECTION_LIMIT and len(lines) > 1:
        lines.pop()
    return _section(text()) if lines else None


def vote_buttons(interaction_id: int) -> Block:
    value = str(interaction_id)
    return {
        "type": "actions",
        "block_id": f"tanya_feedback_{interaction_id}",
        "elements": [
            {
                "type": "button",
                "action_id": VOTE_UP,
                "value": value,
                "text": {"type": "plain_text", "text": "👍 Helpful", "emoji": True},
            },
            {
                "type": "button",
                "action_id": VOTE_DOWN,
                "value": value,
                "text": {"type": "plain_text", "text": "👎 Not helpful", "emoji": True},
            },
            {
                "type": "button",
                "action_id": SUGGEST,
                "value": value,
                "text": {"type": "plain_text", "text": "✏️ Suggest a better answer", "emoji": True},
            },
        ],
    }


def footer(answer: Answer) -> Block:
    adapter = f"adapter `{escape(answer.adapter)}`" if answer.adapter else "base model"
    number = f"answer #{answer.interaction_id}" if answer.interaction_id is not None else "not saved yet"
    return _context(f"{number} · {adapter} · {answer.seconds:.1f}s · react 👍/👎 to rate")


def answer_blocks(answer: Answer) -> list[Block]:
    blocks = answer_sections(answer.text)
    for notice in answer.notices:
        blocks.append(_context(f":warning: {escape(notice)}"))
    if answer.found:
        sources = sources_block(answer.sources)
        if sources is not None:
            blocks.append(sources)
    if answer.interaction_id is not None:  # buttons name the saved answer; reactions work either way
        blocks.append(vote_buttons(answer.interaction_id))
    blocks.append(footer(answer))
    return blocks


def answer_fallback(answer: Answer) -> str:
    """The notification / screen-reader text that goes with the blocks."""
    return shorten(answer.text, 2900) or "(no answer)"


def placeholder_blocks() -> list[Block]:
    return [_context(":hourglass_flowing_sand: _Looking through the documents…_")]


PLACEHOLDER_TEXT = "Looking through the documents…"


def partial_blocks(text: str) -> list[Block]:
    return [*answer_sections(text + " ▍"), _context("_writing…_")]


def problem_blocks(message: str) -> list[Block]:
    return [_section(f":confused: {message}")]


RESTARTING = "Sorry — I was restarted before I could answer this. Please ask again."
DEFERRED = (
    "My database is unavailable just now, so I cannot start on your question yet. "
    "It is kept safe: I will answer it in this thread as soon as the database is back."
)
TOO_LATE = "Sorry — my database was unavailable for too long to answer this in time. Please ask again."


def apology(reference: str) -> str:
    return (
        "Sorry — something went wrong on my side and I could not answer this one. "
        f"Please try again in a minute. (reference `{reference}`)"
    )


def suggest_modal(interaction_id: int, question: str, metadata: str) -> Block:
    """The "Suggest a better answer" form; ``metadata`` carries where to say thank you."""
    return {
        "type": "modal",
        "callback_id": SUGGEST_VIEW,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Better answer"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(f"*Question* (answer #{interaction_id})\n>{escape(shorten(question, 500))}"),
            {
                "type": "input",
                "block_id": SUGGEST_BLOCK,
                "label": {"type": "plain_text", "text": "What should the answer have been?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": SUGGEST_INPUT,
                    "multiline": True,
                    "max_length": 3000,
                },
            },
            _context("tanya learns from corrections the next time it is re-trained."),
        ],
    }


def suggest_thanks(interaction_id: int, *, saved: bool = True) -> Block:
    """The form after a submission: saved, or (``saved=False``) kept until the database is back."""
    text = (
        f":white_check_mark: Thank you — your better answer for #{interaction_id} is saved. "
        "tanya will learn from it the next time it is re-trained."
        if saved
        else f":hourglass_flowing_sand: Thank you — your better answer for #{interaction_id} is kept safe. "
        "My database is unavailable just now; it will be saved as soon as it is back."
    )
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Better answer"},
        "close": {"type": "plain_text", "text": "Done"},
        "blocks": [_section(text)],
    }
