"""``python -m bot`` is the same as the ``tanya`` command."""

from bot.cli import app

app(prog_name="tanya")
