"""The ``tanya`` command line: one Typer application, its commands in one module per area.

* ``application`` – the Typer app, the shared error handling and the service factory
* ``commands``    – ingest, search, ask, chat, feedback, status, ``db upgrade``, serve
* ``training``    – retrain, worker, adapters
* ``reindex``     – moving the Elasticsearch index to a new embedder or mapping
* ``console``, ``chat``, ``ingest_view`` – terminal rendering, the REPL and the ingest progress bar

Importing this package registers every command on ``app``, the console-script entry point.
"""

from bot.cli import commands, reindex, training  # each adds its commands to the application
from bot.cli.application import app

__all__ = ["app", "commands", "reindex", "training"]
