"""From a question in Slack to a finished answer in its thread.

The order matters for users and for the data: claim the message (exactly one answer however often
Slack delivers it), post a placeholder at once (the user sees that tanya is on it), generate on the
bounded answer pool while streaming into the placeholder, then replace it with the Block Kit answer.
The interaction is recorded with the placeholder's ``ts``, so a 👍 on the finished message finds it.
Whatever fails, the thread gets a short apology and the log gets the details, never the user. When
Slack itself will not take the message (rate limited past the retry deadline, down, the channel gone),
the question is recorded as undelivered (``undelivered_answers``, a metric, one ERROR line with the
event id) instead of vanishing: its delivery was acknowledged, so Slack will not send it again.

Every answer leaves one INFO line carrying its Slack event id and interaction id (the log context is
handed to the answer pool with the work), so an operator can go from a thread to the log and back.
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from dataclasses import dataclass

from bot.observability.logs import log_context
from bot.observability.metrics import ANSWERS_IN_FLIGHT, SLACK_ANSWER_SECONDS, UNDELIVERED
from bot.service import InputError
from bot.slack import render
from bot.slack.context import SlackContext
from bot.slack.delivery import Undeliverable, post_once
from bot.slack.once import claim, in_progress_key, message_key
from bot.slack.streaming import StreamingMessage
from bot.slack.text import escape
from storage import ChannelKind
from storage.interactions import thread_interactions
from storage.undelivered import record_undelivered

log = logging.getLogger(__name__)

HISTORY_TURNS = 3


@dataclass(frozen=True)
class Question:
    """A message addressed to tanya, as the answer path needs it: its text, who asked, and where to reply.

    ``ts`` is the question's own message (the claim that keeps it to one answer); ``thread_ts`` the thread
    the answer goes to; ``origin`` decides whether the answer may be trained on.
    """

    text: str
    user: str
    channel: str
    ts: str
    thread_ts: str
    origin: ChannelKind
    team: str | None = None
    event_id: str | None = None


def _reference() -> str:
    return uuid.uuid4().hex[:8]


class Answerer:
    """Answers a question in its Slack thread: claim, placeholder, streamed answer, recorded interaction.

    One per app; ``handle`` runs on a lazy listener and hands the generation to the bounded answer pool.
    """

    def __init__(self, ctx: SlackContext) -> None:
        self.ctx = ctx

    def handle(self, question: Question) -> None:
        """Called from a lazy listener: claim, placeholder, then hand generation to the answer pool."""
        try:
            if not claim(self.ctx.database, message_key(question.channel, question.ts), "answer"):
                log.debug("already answering %s/%s", question.channel, question.ts)
                return
        except Exception:
            reference = _reference()
            log.exception("could not claim %s/%s (reference %s)", question.channel, question.ts, reference)
            self._post_problem(question, render.apology(reference))
            return
        started = time.perf_counter()
        try:
            ts = post_once(
                self.ctx.client,
                channel=question.channel,
                thread_ts=question.thread_ts,
                key=message_key(question.channel, question.ts),
                after_ts=question.ts,
                deadline=self.ctx.settings.slack_retry_seconds,
                text=render.PLACEHOLDER_TEXT,
                blocks=render.placeholder_blocks(),
            )
        except Undeliverable as exc:
            self._undelivered(question, "placeholder", str(exc))
            return
        except Exception as exc:  # a bug, not Slack: still never a question that vanishes without a trace
            log.exception("could not post in %s", question.channel)
            self._undelivered(question, "placeholder", f"{type(exc).__name__}: {exc}")
            return
        try:
            claim(self.ctx.database, in_progress_key(question.channel, ts), "writing")
        except Exception:  # only early reactions depend on it; the answer itself does not
            log.warning("could not mark %s/%s as in progress", question.channel, ts)
        ANSWERS_IN_FLIGHT.inc()
        try:
            # Executors do not carry contextvars over by themselves: the log context goes explicitly.
            in_context = contextvars.copy_context().run
            answer = self.ctx.acks.after_acks(self._answer_counted)
            self.ctx.answers.submit(in_context, answer, question, ts, started)
        except RuntimeError:  # shutting down: the pool takes no new work
            ANSWERS_IN_FLIGHT.dec()
            self._replace(question, ts, render.RESTARTING)

    def _answer_counted(self, question: Question, ts: str, started: float) -> None:
        try:
            if self._answer(question, ts):
                SLACK_ANSWER_SECONDS.observe(time.perf_counter() - started)
        finally:
            ANSWERS_IN_FLIGHT.dec()

    def _answer(self, question: Question, ts: str) -> bool:
        """Generate into the placeholder; True when an answer (not a notice) was delivered."""
        if self.ctx.stopping.is_set():
            self._replace(question, ts, render.RESTARTING)
            return False
        stream = StreamingMessage(self.ctx.client, question.channel, ts, interval=self.ctx.stream_interval)
        try:
            answer = self.ctx.service.ask(
                question.text,
                origin=question.origin,
                user_id=question.user,
                team_id=question.team,
                channel_id=question.channel,
                thread_ts=question.thread_ts,
                message_ts=ts,
                history=self._history(question),
                streaming_callback=stream.append,
            )
        except InputError as exc:
            stream.finish(text=str(exc), blocks=render.problem_blocks(escape(str(exc))))
            return False
        except Exception:
            reference = _reference()
            log.exception("answering %s/%s failed (reference %s)", question.channel, question.ts, reference)
            message = render.apology(reference)
            stream.finish(text=message, blocks=render.problem_blocks(message))
            return False
        with log_context(interaction_id=answer.interaction_id):
            if not stream.finish(text=render.answer_fallback(answer), blocks=render.answer_blocks(answer)):
                # Blocks can be refused where plain text is not: never leave "writing…" behind.
                log.error("Slack refused the blocks of answer #%s; sending it as text", answer.interaction_id)
                text = f"{render.answer_fallback(answer)}\n(answer #{answer.interaction_id})"
                if not self._replace(question, ts, text, plain=True):
                    self._undelivered(
                        question, "answer", "chat.update failed", interaction_id=answer.interaction_id
                    )
                    return False
            log.info(
                "answered %s/%s as answer #%s (%s, %.1fs, adapter %s)",
                question.channel,
                question.ts,
                answer.interaction_id,
                "found" if answer.found else "not found",
                answer.seconds,
                answer.adapter or "base",
            )
        return True

    def _history(self, question: Question) -> list[tuple[str, str]]:
        """Earlier (question, answer) turns of this thread, so "and on Android?" makes sense."""
        if question.thread_ts == question.ts:
            return []
        with self.ctx.database.session() as session:
            turns = thread_interactions(session, question.channel, question.thread_ts)
            return [(turn.question, turn.answer) for turn in turns][-HISTORY_TURNS:]

    def _replace(self, question: Question, ts: str, message: str, *, plain: bool = False) -> bool:
        """Rewrite the placeholder with a notice (or, ``plain``, with text and no blocks at all)."""
        try:
            blocks = [] if plain else render.problem_blocks(message)
            self.ctx.client.chat_update(channel=question.channel, ts=ts, text=message, blocks=blocks)
            return True
        except Exception as exc:
            log.warning("could not update %s/%s: %s", question.channel, ts, exc)
            return False

    def _undelivered(
        self, question: Question, stage: str, reason: str, *, interaction_id: int | None = None
    ) -> None:
        """The answer could not reach Slack: count it, log it with the event id, and keep a row."""
        UNDELIVERED.labels(stage=stage).inc()
        log.error(
            "the answer to %s/%s (event %s) could not be delivered at the %s stage: %s",
            question.channel,
            question.ts,
            question.event_id or "unknown",
            stage,
            reason,
        )
        try:
            with self.ctx.database.session() as session:
                record_undelivered(
                    session,
                    channel_id=question.channel,
                    question_ts=question.ts,
                    thread_ts=question.thread_ts,
                    user_id=question.user,
                    event_id=question.event_id,
                    stage=stage,
                    error=reason,
                    interaction_id=interaction_id,
                )
        except Exception as exc:
            log.error(
                "could not record the undelivered answer to %s/%s: %s", question.channel, question.ts, exc
            )

    def _post_problem(self, question: Question, message: str) -> None:
        try:
            self.ctx.client.chat_postMessage(
                channel=question.channel,
                thread_ts=question.thread_ts,
                text=message,
                blocks=render.problem_blocks(message),
            )
        except Exception as exc:
            log.warning("could not tell %s about a failure: %s", question.channel, exc)
