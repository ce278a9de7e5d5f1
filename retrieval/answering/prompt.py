"""The prompt for answers grounded in retrieved documents.

The bundled models (Gemma 3 270M by default, SmolLM2-135M) are tiny, so the prompt is short and concrete:
sources numbered in retrieval order (the order is the ranking: [1] is the best match, and cutting from the
middle when the prompt is too long drops the weakest ones first), the earlier turns of the Slack thread as
real chat turns, and the instruction repeated after the sources, right before the model starts writing,
because a small model follows what it read last. A one-shot example was tried and dropped: the model copied
the example's answer verbatim.

The prompt is stored with each interaction as a JSON list of `{"role", "content"}` messages, which is also
the conversational format TRL trains on.

The two formats the template defines are read back here and nowhere else: the citation grammar the
instruction asks for (`[3]`, or `[1, 3]` for several sources) and the numbered source list
(`parse_sources`). The answer checks, the training data and the evaluation all parse with these.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from haystack.components.builders import ChatPromptBuilder
    from haystack.dataclasses import ChatMessage

SYSTEM_PROMPT = (
    "You answer questions from a team's documents. Use only the numbered sources. "
    "Cite the source you used like [1]. If the sources do not contain the answer, say you don't know."
)
ANSWER_INSTRUCTION = "Answer in one sentence from the sources and cite the source number like [1]."

PROMPT_TEMPLATE = """
{%- message role="system" -%}
__SYSTEM_PROMPT__
{%- endmessage -%}
{%- for turn in history -%}
{%- message role="user" -%}
{{ turn[0] }}
{%- endmessage -%}
{%- message role="assistant" -%}
{{ turn[1] }}
{%- endmessage -%}
{%- endfor -%}
{%- message role="user" -%}
Sources:
{% for doc in documents -%}
[{{ loop.index }}] {{ doc.meta.title or doc.meta.file_name or doc.meta.source or "Untitled" }}: {{ doc.content | trim }}

{% endfor -%}
Question: {{ question }}
__INSTRUCTION__
{%- endmessage -%}
"""

# A citation: one source number in brackets, or several separated by commas or semicolons.
CITATION = re.compile(r"\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]")
# One entry of the template's source list, "[n] Title: text", up to the next entry or the question.
_SOURCE_ENTRY = re.compile(r"^\[(\d{1,3})\] (.*?)(?=^\[\d{1,3}\] |^Question: |\Z)", re.MULTILINE | re.DOTALL)

DEFAULT_MAX_HISTORY_TURNS = 3
DEFAULT_MAX_HISTORY_CHARS = 600


def make_prompt_builder(
    *, system_prompt: str = SYSTEM_PROMPT, instruction: str = ANSWER_INSTRUCTION
) -> ChatPromptBuilder:
    """A `ChatPromptBuilder` for the grounded-answer prompt.

    Inputs: `documents` (in retrieval order), `question`, and optionally `history`, a list of
    (user, assistant) pairs, oldest first (see `bound_history`).
    """
    from haystack.components.builders import ChatPromptBuilder  # heavy

    for text in (system_prompt, instruction):
        if "{" in text or "}" in text or not text.strip():
            raise ValueError("system_prompt and instruction must be non-empty plain text without braces")
    template = PROMPT_TEMPLATE.replace("__SYSTEM_PROMPT__", system_prompt.strip())
    template = template.replace("__INSTRUCTION__", instruction.strip())
    return ChatPromptBuilder(template=template, required_variables=["documents", "question"])


def bound_history(
    history: Iterable[tuple[str, str]],
    *,
    max_turns: int = DEFAULT_MAX_HISTORY_TURNS,
    max_chars: int = DEFAULT_MAX_HISTORY_CHARS,
) -> list[tuple[str, str]]:
    """The last `max_turns` (user, assistant) pairs of a thread, each side cut to `max_chars`.

    Earlier turns help a follow-up like "and in 2019?" but cost prompt tokens, which on a CPU are time.
    """
    # A turn with an empty side (an answer that failed) would render an empty chat message.
    turns = [(str(u), str(a)) for u, a in history if str(u).strip() and str(a).strip()]
    kept = turns[-max_turns:] if max_turns > 0 else []
    return [(_clip(user, max_chars), _clip(assistant, max_chars)) for user, assistant in kept]


def _clip(text: str, max_chars: int) -> str:
    text = text.strip()
    if len(text) <= max_chars:
        return text
    return text[: max(0, max_chars - 1)].rstrip() + "…"


def truncate_question(text: str, max_chars: int) -> tuple[str, bool]:
    """Shortens a giant question (a pasted log, a whole document) to `max_chars`, with a notice.

    The beginning and the end are kept, because people paste material and then ask about it, or ask and
    then paste; the notice tells the model that something is missing. Returns the text and whether it was cut.
    """
    text = text.strip()
    if len(text) <= max_chars:
        return text, False
    notice = f"\n[… {len(text) - max_chars:,} characters cut …]\n"
    if max_chars < 2 * len(notice):
        return text[:max_chars], True
    room = max_chars - len(notice)
    tail = room // 3
    head = room - tail
    shortened = text[:head].rstrip() + notice + (text[len(text) - tail :].lstrip() if tail else "")
    return shortened, True


def messages_to_json(messages: Sequence[ChatMessage]) -> str:
    """The prompt as stored: a JSON list of `{"role", "content"}`, exact and ready for TRL."""
    return json.dumps(
        [{"role": message.role.value, "content": message.text or ""} for message in messages],
        ensure_ascii=False,
    )


def cited_numbers(text: str) -> list[int]:
    """Every source number that `text` cites, once each, in order of first mention."""
    numbers = (int(number) for group in CITATION.findall(text) for number in re.split(r"[,;]", group))
    return list(dict.fromkeys(numbers))


def strip_citations(text: str) -> str:
    """`text` with every citation marker replaced by a space: what it says, apart from where it says it."""
    return CITATION.sub(" ", text)


def parse_sources(user_message: str) -> dict[int, str]:
    """The numbered sources of a rendered user message, as `{n: "Title: text"}` (empty without a list)."""
    return dict(SourceList.parse(user_message).entries)


@dataclass(frozen=True)
class SourceList:
    """A rendered user message cut into what comes before the sources, the sources, and the question.

    Training fits a long stored prompt to its length limit by dropping or shortening sources; it
    re-renders the message from these parts so that the result reads exactly like a prompt the
    template wrote (`render(parse(m)) == m` up to whitespace between entries).
    """

    head: str
    entries: tuple[tuple[int, str], ...]
    tail: str

    @classmethod
    def parse(cls, user_message: str) -> SourceList:
        matches = list(_SOURCE_ENTRY.finditer(user_message))
        if not matches:
            return cls(head=user_message, entries=(), tail="")
        entries = tuple((int(match.group(1)), match.group(2).strip()) for match in matches)
        return cls(
            head=user_message[: matches[0].start()], entries=entries, tail=user_message[matches[-1].end() :]
        )

    def render(self) -> str:
        """The message with the entries numbered as given (renumber before, if the numbers must run 1…n)."""
        if not self.entries:
            return self.head + self.tail
        return self.head + "".join(f"[{number}] {text}\n\n" for number, text in self.entries) + self.tail
