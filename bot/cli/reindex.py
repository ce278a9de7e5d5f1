"""``tanya reindex``: move the Elasticsearch index to the configured embedder and mapping, with no downtime.

Registered on the ``tanya`` app by importing this module (bot/cli/commands.py does). The work is
``retrieval.ingestion.reindex``; this module only turns settings into its config and its report into lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.application import app, friendly_errors, make_service, say
from bot.service import InputError
from retrieval.stores.errors import StoreUnavailableError


@app.command()
@friendly_errors
def reindex(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Fill the new index by ingesting these files and folders instead of copying the current "
            "chunks (needed after changing the chunking)."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be done.")] = False,
    delete_old: Annotated[
        bool,
        typer.Option(
            "--delete-old",
            help="Delete the previous index after the switch. By default it is kept, for processes that "
            "still run with the previous embedder until they restart.",
        ),
    ] = False,
) -> None:
    """Rebuild the Elasticsearch index for the configured embedder and switch the alias to it; searches keep working."""
    from elasticsearch import TransportError  # heavy

    from retrieval.ingestion.reindex import Reindexer, make_client  # heavy

    config = make_service().retrieval_config
    if not config.uses_elasticsearch:
        raise InputError(
            "reindex is for Elasticsearch (TANYA_DOCUMENT_STORE=http://…); the embedded store re-embeds "
            "on the next `tanya ingest`."
        )
    reindexer = Reindexer(config=config, client=make_client(config), progress=say)
    try:
        if dry_run:
            say(reindexer.plan().describe())
            return
        report = reindexer.run(list(paths or ()), delete_old=delete_old)
    except TransportError as exc:  # the server went away: one line, as for every other command
        raise StoreUnavailableError(f"Elasticsearch did not answer: {exc}") from None
    if report.switched:
        kept = "" if report.deleted_old or report.source is None else f"; {report.source} is kept"
        say(f"Done in {report.seconds:.1f}s{kept}.")
