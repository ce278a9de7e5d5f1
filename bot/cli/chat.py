"""``tanya chat``: a REPL for trying tanya and giving feedback without Slack."""

from __future__ import annotations

from bot.cli import console as out
from bot.errors import describe, user_errors
from bot.service import Answer, InputError, Tanya

HELP = (
    "Type a question and press Enter. Then:\n"
    "  +            👍 the last answer\n"
    "  -            👎 the last answer\n"
    "  !fix <text>  record a better answer for the last question\n"
    "  !new         forget the conversation so far\n"
    "  !help        this text;  !quit or Ctrl-D to leave"
)

HISTORY_TURNS = 3


class ChatSession:
    """The state of one ``tanya chat``: the thread so far and the last answer, which ``+``/``-``/``!fix`` act on."""

    def __init__(self, service: Tanya, *, user_id: str) -> None:
        self.service = service
        self.user_id = user_id
        self.last: Answer | None = None
        self.history: list[tuple[str, str]] = []

    def run(self) -> None:
        out.console.print("[bold]tanya[/] chat — !help for commands, Ctrl-D to leave.")
        while True:
            try:
                line = input("\nyou> ")
            except EOFError:
                out.console.print()
                return
            if not self.handle(line.strip()):
                return

    def handle(self, line: str) -> bool:
        """Process one line; False ends the session."""
        if not line:
            return True
        if line in {"!quit", "!exit", "!q"}:
            return False
        try:
            if line == "!help":
                out.console.print(HELP)
            elif line == "!new":
                self.history.clear()
                out.console.print("Started a new conversation.")
            elif line in {"+", "-"}:
                self._rate(up=line == "+")
            elif line.startswith("!fix"):
                self._fix(line[len("!fix") :].strip())
            elif line.startswith("!"):
                out.error(f"unknown command {line.split()[0]}; !help lists them")
            else:
                self._ask(line)
        except InputError as exc:
            out.error(str(exc))
        except Exception as exc:
            if not isinstance(exc, user_errors()):
                raise
            out.error(describe(exc))
        return True

    def _ask(self, question: str) -> None:
        printer = out.TokenPrinter()
        out.console.print("[bold]tanya>[/] ", end="")
        answer = self.service.ask(
            question,
            user_id=self.user_id,
            history=self.history[-HISTORY_TURNS:],
            streaming_callback=printer.callback,
        )
        out.print_answer(answer, streamed=printer.printed)
        self.last = answer
        self.history.append((question, answer.text))

    def _rate(self, *, up: bool) -> None:
        if self.last is None:
            raise InputError("There is no answer to rate yet: ask something first.")
        if self.last.interaction_id is None:
            raise InputError("That answer is not saved yet (the database is unavailable): rate it later.")
        self.service.rate(self.last.interaction_id, user_id=self.user_id, up=up, source="cli")
        out.console.print(f"{'👍' if up else '👎'} recorded for answer #{self.last.interaction_id}.")

    def _fix(self, text: str) -> None:
        if self.last is None:
            raise InputError("There is no answer to correct yet: ask something first.")
        if not text:
            raise InputError(
                "Write the better answer after !fix, e.g. !fix The VPN portal is vpn.example.com"
            )
        if self.last.interaction_id is None:
            raise InputError("That answer is not saved yet (the database is unavailable): correct it later.")
        self.service.correct(self.last.interaction_id, user_id=self.user_id, text=text, source="cli")
        out.console.print(f"Correction recorded for answer #{self.last.interaction_id}. Thank you!")
