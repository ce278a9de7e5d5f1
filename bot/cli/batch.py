"""``tanya ask --json -`` and ``tanya search -``: one question per stdin line, one JSON object per line.

The models load once for the whole batch, so a benchmark or a script can put hundreds of questions
through the product path at the speed of the answers alone. One bad line does not end the batch: it
gets an ``{"error": …}`` object on its line of output (so outputs stay aligned with inputs) and the
command exits non-zero at the end, after every other question has been answered.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from bot.errors import describe, user_errors
from bot.service import InputError

Handler = Callable[[str], dict[str, Any]]


def run_batch(lines: Iterable[str], handle: Handler, out: TextIO) -> int:
    """Answer each non-empty line with ``handle``; returns how many lines failed.

    Each output object carries ``line`` (1-based, counting blank lines too) and the question as read,
    stripped. Output is flushed per line so a pipe sees answers as they are written.
    """
    failures = 0
    for number, raw in enumerate(lines, start=1):
        question = raw.strip()
        if not question:
            continue
        try:
            result = handle(question)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            if os.environ.get("TANYA_DEBUG"):
                raise
            failures += 1
            if not isinstance(exc, (InputError, *user_errors())):
                logging.getLogger("tanya").debug("unexpected failure on line %d", number, exc_info=True)
            result = {"error": describe(exc)}
        out.write(json.dumps({"line": number, "question": question, **result}, ensure_ascii=False) + "\n")
        out.flush()
    return failures
