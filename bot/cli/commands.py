"""The ``tanya`` command: asking, ingesting, searching, rating, status, the database and the Slack bot.

Each module of ``bot.cli`` adds its commands to the one Typer application of ``bot.cli.application``;
``bot.cli`` imports them all.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bot.cli import console as out
from bot.cli.application import (
    EXIT_FAILURE,
    app,
    cli_user,
    db_app,
    friendly_errors,
    make_service,
    quiet_libraries,
    say,
)
from bot.cli.batch import run_batch
from bot.cli.chat import ChatSession
from bot.service import InputError
from bot.settings import Settings
from storage import Database


@app.command()
@friendly_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders: Markdown, text, HTML, PDF.")],
) -> None:
    """Add documents to the knowledge base (re-ingesting unchanged files is free)."""
    from bot.cli.ingest_view import run_ingest  # heavy

    report = run_ingest(make_service(), paths)
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
    service = make_service()
    if question == "-":
        failed = run_batch(
            sys.stdin,
            lambda text: {"sources": [s.as_json() for s in service.search(text, top_k=top_k)]},
            sys.stdout,
        )
        if failed:
            raise typer.Exit(EXIT_FAILURE)
        return
    sources = service.search(question, top_k=top_k)
    if as_json:
        print(
            json.dumps(
                {"question": question.strip(), "sources": [s.as_json() for s in sources]}, ensure_ascii=False
            )
        )
    elif not sources:
        out.console.print("Nothing relevant found.")
    else:
        out.console.print(out.sources_list(sources, show_scores=True))


@app.command()
@friendly_errors
def ask(
    question: Annotated[
        str, typer.Argument(help="What you want to know, or - (with --json) to read one question per line.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per answer.")] = False,
) -> None:
    """Answer a question from the documents, citing sources."""
    if question == "-" and not as_json:
        raise InputError("reading questions from stdin needs --json: tanya ask --json - < questions.txt")
    service = make_service()
    if question == "-":
        failed = run_batch(
            sys.stdin,
            lambda text: service.ask(text, user_id=cli_user()).as_json(),
            sys.stdout,
        )
        if failed:
            raise typer.Exit(EXIT_FAILURE)
        return
    printer = None if as_json else out.TokenPrinter()
    answer = service.ask(
        question, user_id=cli_user(), streaming_callback=printer.callback if printer else None
    )
    if as_json:
        print(json.dumps(answer.as_json(), ensure_ascii=False))
        return
    out.print_answer(answer, streamed=bool(printer and printer.printed))


@app.command()
@friendly_errors
def chat() -> None:
    """Ask questions in a loop; rate answers with + and -, correct them with !fix <text>."""
    ChatSession(make_service(), user_id=cli_user()).run()


class Rating(StrEnum):
    """The values ``tanya feedback`` takes: a 👍, a 👎, or withdrawing the vote."""

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
    service = make_service()
    if rating is Rating.none:
        removed = service.unrate(interaction_id, user_id=cli_user())
        out.console.print("Vote withdrawn." if removed else "You had not rated that answer.")
        return
    service.rate(interaction_id, user_id=cli_user(), up=rating is Rating.up, source="cli")
    out.console.print(f"Recorded {'👍' if rating is Rating.up else '👎'} for answer #{interaction_id}.")


@app.command()
@friendly_errors
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Documents, answers, votes and the active adapter."""
    stats = make_service().status()
    if as_json:
        print(json.dumps(stats, ensure_ascii=False))
        return
    for key, value in stats.items():
        out.console.print(f"[bold]{key.replace('_', ' ')}[/]: {value if value is not None else '—'}")


@db_app.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Apply database migrations (needed after upgrading tanya on PostgreSQL)."""
    quiet_libraries()
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


@app.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface for HTTP mode (ignored in Socket Mode).")] = "0.0.0.0",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port for HTTP mode.")] = 3000,
) -> None:
    """Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on /slack/events."""
    from bot.slack.serve import serve as run_slack  # heavy

    quiet_libraries()
    say("Loading tanya…")
    run_slack(Settings(), host=host, port=port, on_ready=lambda where: say(f"tanya is {where}"))
    say("tanya stopped.")
