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
from dataclasses import asdict, dataclass
from typing import Any

from bot.observability.logs import log_context
from bot.observability.metrics import (
    ANSWERS_IN_FLIGHT,
    CLAIMS_RESUMED,
    DUPLICATES,
    SLACK_ANSWER_SECONDS,
    UNDELIVERED,
)
from bot.service import InputError
from bot.slack import render
from bot.slack.context import SlackContext
from bot.slack.delivery import Undeliverable, post_once
from bot.slack.once import claim, in_progress_key, message_key
from bot.slack.streaming import StreamingMessage
from bot.slack.text import escape
from storage import ChannelKind
from storage.claims import TakenClaim
from storage.database import is_unavailable
from storage.interactions import find_by_slack_message, thread_interactions
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
    may_be_correction: bool = False  # a thread reply the database was unavailable to tell apart


def _reference() -> str:
    return uuid.uuid4().hex[:8]


class Answerer:
    """Answers a question in its Slack thread: claim, placeholder, streamed answer, recorded interaction.

    One per app; ``handle`` runs on a lazy listener and hands the generation to the bounded answer pool.
    """

    def __init__(self, ctx: SlackContext) -> None:
        self.ctx = ctx

    def handle(self, question: Question, *, deferred: bool = False) -> None:
        """Called from a lazy listener: claim, placeholder, then hand generation to the answer pool.

        When the database cannot take the claim, the question is spooled and answered once it is back
        (``bot.slack.recovery``); ``deferred`` is that later call, which raises instead of spooling again.
        """
        key = message_key(question.channel, question.ts)
        try:
            taken = self.ctx.leases.take(key, "answer", {"question": asdict(question)})
        except Exception as exc:
            if deferred:
                raise
            if is_unavailable(exc):
                self.defer(question)
                return
            reference = _reference()
            log.exception("could not claim %s/%s (reference %s)", question.channel, question.ts, reference)
            self._post_problem(question, render.apology(reference))
            return
        if taken is None:
            log.debug("already answering %s/%s", question.channel, question.ts)
            DUPLICATES.labels(kind="answer").inc()
            return
        if taken.resumed:
            CLAIMS_RESUMED.labels(how="retry").inc()
        self.start(question, taken)

    def start(self, question: Question, taken: TakenClaim) -> None:
        """With the claim held: the placeholder (the one a dead process left, if any), then generation."""
        started = time.perf_counter()
        if taken.resumed and self._was_answered(question, taken):
            self.ctx.leases.finish(taken.key)
            return
        ts = self._placeholder(question, taken)
        if ts is None:
            self.ctx.leases.finish(taken.key)
            return
        self.ctx.leases.note(
            taken.key, {"placeholder_ts": ts, "attempts": int(taken.payload.get("attempts", 0)) + 1}
        )
        try:
            claim(self.ctx.database, in_progress_key(question.channel, ts), "writing")
        except Exception:  # only early reactions depend on it; the answer itself does not
            log.warning("could not mark %s/%s as in progress", question.channel, ts)
        ANSWERS_IN_FLIGHT.inc()
        try:
            # Executors do not carry contextvars over by themselves: the log context goes explicitly.
            in_context = contextvars.copy_context().run
            answer = self.ctx.acks.after_acks(self._answer_counted)
            self.ctx.answers.submit(in_context, answer, question, ts, started, taken.key)
        except RuntimeError:  # shutting down: the pool takes no new work
            ANSWERS_IN_FLIGHT.dec()
            self._replace(question, ts, render.RESTARTING)
            self.ctx.leases.finish(taken.key)

    def _placeholder(self, question: Question, taken: TakenClaim) -> str | None:
        """The ts of the message the answer is written into, or None (recorded undelivered)."""
        left = taken.payload.get("placeholder_ts") if taken.resumed else None
        if left:
            log.info(
                "resuming the answer to %s/%s in its placeholder %s", question.channel, question.ts, left
            )
            self._replace_placeholder(question, str(left))
            return str(left)
        try:
            return post_once(
                self.ctx.client,
                channel=question.channel,
                thread_ts=question.thread_ts,
                key=taken.key,
                after_ts=question.ts,
                deadline=self.ctx.settings.slack_retry_seconds,
                look_first=taken.resumed,  # a dead owner may have posted it without noting its ts
                text=render.PLACEHOLDER_TEXT,
                blocks=render.placeholder_blocks(),
            )
        except Undeliverable as exc:
            self._undelivered(question, "placeholder", str(exc))
        except Exception as exc:  # a bug, not Slack: still never a question that vanishes without a trace
            log.exception("could not post in %s", question.channel)
            self._undelivered(question, "placeholder", f"{type(exc).__name__}: {exc}")
        return None

    def _was_answered(self, question: Question, taken: TakenClaim) -> bool:
        """A dead owner saved the answer but died before finishing: show the saved text, do not redo it."""
        left = taken.payload.get("placeholder_ts")
        if not left:
            return False
        with self.ctx.database.session() as session:
            saved = find_by_slack_message(session, question.channel, str(left))
            text = saved.answer if saved is not None else None
            number = saved.id if saved is not None else None
        if text is None:
            return False
        log.info(
            "the answer to %s/%s was saved as #%s before a restart", question.channel, question.ts, number
        )
        self._replace(question, str(left), f"{text}\n(answer #{number})", plain=True)
        return True

    def _replace_placeholder(self, question: Question, ts: str) -> None:
        try:
            self.ctx.client.chat_update(
                channel=question.channel,
                ts=ts,
                text=render.PLACEHOLDER_TEXT,
                blocks=render.placeholder_blocks(),
            )
        except Exception as exc:  # the answer's own update will try again
            log.warning("could not reset %s/%s: %s", question.channel, ts, exc)

    def defer(self, question: Question) -> None:
        """The database is unavailable: keep the question on disk and tell the asker the truth."""
        payload = {**asdict(question), "spooled_at": time.time()}
        added = self.ctx.service.outbox.put(f"question:{question.channel}:{question.ts}", "question", payload)
        if added and not question.may_be_correction:  # see ``Feedback.take_thread_reply``
            self.ctx.ephemeral(
                channel=question.channel,
                user=question.user,
                text=render.DEFERRED,
                thread_ts=question.thread_ts,
            )

    def _answer_counted(self, question: Question, ts: str, started: float, key: str) -> None:
        try:
            if self._answer(question, ts):
                SLACK_ANSWER_SECONDS.observe(time.perf_counter() - started)
        finally:
            ANSWERS_IN_FLIGHT.dec()
            self.ctx.leases.finish(key)

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
        with log_context(interaction_id=answer.interaction_id or "spooled"):
            if not stream.finish(text=render.answer_fallback(answer), blocks=render.answer_blocks(answer)):
                # Blocks can be refused where plain text is not: never leave "writing…" behind.
                log.error("Slack refused the blocks of answer #%s; sending it as text", answer.interaction_id)
                text = (
                    f"{render.answer_fallback(answer)}\n(answer #{answer.interaction_id or 'not saved yet'})"
                )
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
        try:
            with self.ctx.database.session() as session:
                turns = thread_interactions(session, question.channel, question.thread_ts)
                return [(turn.question, turn.answer) for turn in turns][-HISTORY_TURNS:]
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("the database is unavailable: answering %s without the thread", question.ts)
            return []

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
        except Exception as exc:  # the ERROR line above is then the record
            log.error(
                "could not record the undelivered answer to %s/%s: %s", question.channel, question.ts, exc
            )

    def _post_problem(self, question: Question, message: str) -> None:
        post_problem(self.ctx.client, question, message)


def post_problem(client: Any, question: Question, message: str) -> None:
    """Tell the thread what went wrong, as a new message; a failure to do even that is a log line."""
    try:
        client.chat_postMessage(
            channel=question.channel,
            thread_ts=question.thread_ts,
            text=message,
            blocks=render.problem_blocks(message),
        )
    except Exception as exc:
        log.warning("could not tell %s about a failure: %s", question.channel, exc)
