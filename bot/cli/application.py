"""The ``tanya`` Typer application and what every command shares: quiet libraries and friendly errors.

Every failure a user can cause or fix (an empty question, a missing file, a database that is not a
database, a store that does not answer) ends as one line on stderr and a non-zero exit status. The
commands live in ``bot.cli`` (asking, ingesting, serving) and ``bot.cli.training`` (re-training).
"""

from __future__ import annotations

import functools
import getpass
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from bot.cli import console as out
from bot.errors import describe, user_errors
from bot.observability.logs import configure_logging, json_enabled
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


def quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    for noisy in (
        "httpx",
        "haystack",
        "haystack_integrations",
        "transformers",
        "sentence_transformers",
        "alembic",
        "elastic_transport",
        "elasticsearch",
    ):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def report_error(message: str) -> None:
    """One line on stderr: for a person, or a JSON log record when the logs are JSON lines."""
    if json_enabled():
        logging.getLogger("tanya").error(message)
    else:
        out.error(message)


def say(message: str) -> None:
    """A progress line for a person on stdout, or an INFO record when the logs are JSON lines."""
    if json_enabled():
        logging.getLogger("tanya").info(message)
    else:
        out.console.print(message, markup=False)


def friendly_errors(command: F) -> F:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InputError as exc:
            report_error(str(exc))
            raise typer.Exit(EXIT_INPUT) from None
        except KeyboardInterrupt:
            report_error("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if os.environ.get("TANYA_DEBUG"):
                raise
            if isinstance(exc, user_errors()):
                report_error(describe(exc))
            else:
                logging.getLogger("tanya").debug("unexpected failure", exc_info=True)
                report_error(
                    f"unexpected {type(exc).__name__}: {describe(exc)} (set TANYA_DEBUG=1 for details)"
                )
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper  # type: ignore[return-value]


def make_service() -> Tanya:
    quiet_libraries()
    return Tanya(Settings())


def cli_user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:unknown"
