"""The ``tanya`` command.

Every failure a user can cause or fix (an empty question, a missing file, a database that is not a
database, a store that does not answer) ends as one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import functools
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from bot import console as out
from bot.errors import describe, user_errors
from bot.service import InputError, Tanya
from bot.settings import Settings

app = typer.Typer(
    name="tanya",
    help="Answers questions from your team's documents, and learns from 👍/👎.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INPUT = 2
EXIT_FAILURE = 1


def _quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(
        level=os.environ.get("TANYA_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "haystack", "transformers", "sentence_transformers", "alembic"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def friendly_errors(command: F) -> F:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InputError as exc:
            out.error(str(exc))
            raise typer.Exit(EXIT_INPUT) from None
        except KeyboardInterrupt:
            out.error("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if os.environ.get("TANYA_DEBUG"):
                raise
            if isinstance(exc, user_errors()):
                out.error(describe(exc))
            else:
                logging.getLogger("tanya").debug("unexpected failure", exc_info=True)
                out.error(f"unexpected {type(exc).__name__}: {describe(exc)} (set TANYA_DEBUG=1 for details)")
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper  # type: ignore[return-value]


def _service() -> Tanya:
    _quiet_libraries()
    return Tanya(Settings())


def _cli_user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:unknown"


@app.command()
@friendly_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders: Markdown, text, HTML, PDF.")],
) -> None:
    """Add documents to the knowledge base (re-ingesting unchanged files is free)."""
    from bot.ingest_view import run_ingest

    report = run_ingest(_service(), paths)
    if report.files_skipped and not (report.files_indexed or report.files_unchanged):
        raise typer.Exit(EXIT_FAILURE)


@app.command()
@friendly_errors
def search(
    question: Annotated[
        str, typer.Argument(help="The question, or - to read one question per line from stdin.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    top_k: Annotated[int | None, typer.Option("--top-k", "-k", min=1, max=100)] = None,
) -> None:
    """Show the sources retrieval finds for a question, without generating an answer."""
    service = _service()
    if question == "-":
        for line in sys.stdin:
            text = line.strip()
            if not text:
                continue
            sources = service.search(text, top_k=top_k)
            print(
                json.dumps({"question": text, "sources": [s.as_dict() for s in sources]}, ensure_ascii=False)
            )
        return
    sources = service.search(question, top_k=top_k)
    if as_json:
        print(
            json.dumps(
                {"question": question.strip(), "sources": [s.as_dict() for s in sources]}, ensure_ascii=False
            )
        )
    elif not sources:
        out.console.print("Nothing relevant found.")
    else:
        out.console.print(out.sources_table(sources, show_scores=True))


@app.command()
@friendly_errors
def ask(
    question: Annotated[str, typer.Argument(help="What you want to know.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Answer a question from the documents, citing sources."""
    service = _service()
    printer = None if as_json else out.TokenPrinter()
    answer = service.ask(question, user_id=_cli_user(), streaming_callback=printer)
    if as_json:
        print(json.dumps(answer.as_json(), ensure_ascii=False))
        return
    out.print_answer(answer, streamed=bool(printer and printer.printed))


@app.command()
@friendly_errors
def chat() -> None:
    """Ask questions in a loop; rate answers with + and -, correct them with !fix <text>."""
    from bot.chat import ChatSession

    ChatSession(_service(), user_id=_cli_user()).run()


class Rating(StrEnum):
    up = "up"
    down = "down"
    none = "none"


@app.command()
@friendly_errors
def feedback(
    interaction_id: Annotated[int, typer.Argument(help="The answer number shown after each answer.")],
    rating: Annotated[Rating, typer.Argument(help="up, down, or none to withdraw your vote.")],
) -> None:
    """Rate an answer (one vote per person; rating again changes it)."""
    service = _service()
    if rating is Rating.none:
        removed = service.unrate(interaction_id, user_id=_cli_user())
        out.console.print("Vote withdrawn." if removed else "You had not rated that answer.")
        return
    service.rate(interaction_id, user_id=_cli_user(), up=rating is Rating.up, source="cli")
    out.console.print(f"Recorded {'👍' if rating is Rating.up else '👎'} for answer #{interaction_id}.")


@app.command()
@friendly_errors
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Documents, answers, votes and the active adapter."""
    stats = _service().status()
    if as_json:
        print(json.dumps(stats, ensure_ascii=False))
        return
    for key, value in stats.items():
        out.console.print(f"[bold]{key.replace('_', ' ')}[/]: {value if value is not None else '—'}")


@db_app.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Apply database migrations (needed after upgrading tanya on PostgreSQL)."""
    from storage import Database

    _quiet_libraries()
    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    database.check()
    before = database.current_revision()
    database.upgrade()
    after = database.current_revision()
    if before == after:
        out.console.print(f"{database.description} is up to date (revision {after}).")
    else:
        out.console.print(f"Upgraded {database.description} from {before or 'empty'} to {after}.")


def main() -> None:  # pragma: no cover - console-script entry point
    app()
