"""Terminal rendering shared by ``tanya ask``, ``tanya search`` and ``tanya chat``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console, Group
from rich.padding import Padding
from rich.text import Text

from bot.service import Answer, Source
from retrieval.answering.checks import Change

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """One line on stderr, never a traceback."""
    errors.print(f"[bold red]error:[/] {message}", soft_wrap=True)


def notice(message: str) -> None:
    errors.print(f"[yellow]note:[/] {message}", soft_wrap=True)


def sources_list(sources: list[Source], *, show_scores: bool = False) -> Group:
    """Each source on its line, and under it the passage that best matches the question.

    The quote lets a reader check a vague answer, or find the real one, without opening the file.
    """
    lines: list[Text | Padding] = []
    for source in sources:
        line = Text.assemble((f"[{source.number}] ", "bold cyan"), source.title)
        if source.source:
            line.append(f"  {source.source}", style="dim")
        if show_scores and source.score is not None:
            line.append(f"  {source.score:.4f}")
        lines.append(line)
        if source.excerpt:
            lines.append(Padding(Text(f"“{source.excerpt}”", style="italic dim"), (0, 0, 0, 4)))
    return Group(*lines)


def print_answer(answer: Answer, *, streamed: bool) -> None:
    if not streamed:
        console.print(answer.text, markup=False)
    else:
        console.print()
        if answer.changed(Change.HISTORY_DROPPED):
            # What streamed was the first reply; the answer kept and stored was written afterwards.
            console.print(
                "[dim]That repeated an earlier answer, so tanya answered again without the conversation "
                "so far:[/]"
            )
            console.print(answer.text, markup=False)
        elif answer.changed(Change.ECHO_REMOVED):
            # What streamed included the model's copy of the prompt; show what was kept and stored.
            console.print("[dim]The model repeated part of its prompt. Without it:[/]")
            console.print(answer.text, markup=False)
    for text in answer.notices:
        notice(text)
    if answer.sources and answer.found:
        console.print("\n[bold]Sources[/]")
        console.print(sources_list(answer.sources))
    adapter = answer.adapter or "base model"
    console.print(
        f"\n[dim]answer #{answer.interaction_id} · {adapter} · {answer.seconds:.1f}s · "
        f"rate it: tanya feedback {answer.interaction_id} up|down[/]"
    )


class TokenPrinter:
    """Writes streamed tokens as they arrive, so a slow CPU answer still feels alive.

    Pass ``printer.callback``, not the printer: Haystack deep-copies pipeline inputs, and a plain
    function survives that as itself, while an object would be copied and its state lost.
    """

    def __init__(self) -> None:
        self.printed = False

        def callback(chunk: Any) -> None:
            text = getattr(chunk, "content", "") or ""
            if text:
                sys.stdout.write(text)
                sys.stdout.flush()
                self.printed = True

        self.callback = callback


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    if console.is_terminal:
        with console.status(message, spinner="dots"):
            yield
    else:
        yield
