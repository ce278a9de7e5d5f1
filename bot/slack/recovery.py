"""Answers that a crash or a database outage interrupted, finished by whichever process can.

* **Orphaned claims.** A process killed mid-answer leaves its claim unfinished; once the lease runs out
  (``bot.slack.leases``), the scan on the lease thread of every replica looks for such claims, and the
  one replica whose conditional ``UPDATE`` wins takes the question over from the claim's payload and
  writes the answer into the placeholder the dead process had posted. Slack's own retry of the event, if
  one comes, takes the same path through ``Answerer.handle``. A question that keeps killing its process
  is not retried forever: after ``MAX_ATTEMPTS`` its placeholder gets an apology.
* **Deferred questions.** A question whose claim could not be written (the database was unavailable) is
  spooled (``bot.outbox``) and claimed when the database is back, so replicas still answer it once —
  answering it locally at once could not be reconciled, since two replicas may each hold a copy
  (Slack sends an @mention as both ``app_mention`` and ``message``). Past ``deferred_question_minutes``
  the thread is told to ask again instead.
"""

from __future__ import annotations

import logging
import time
from dataclasses import fields
from typing import Any

from bot.observability.metrics import CLAIMS_RESUMED
from bot.slack import render
from bot.slack.answering import Answerer, Question, post_problem
from bot.slack.context import SlackContext
from bot.slack.feedback import Feedback
from storage import ChannelKind

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
_QUESTION_FIELDS = {field.name for field in fields(Question)}


def question_from(payload: dict[str, Any]) -> Question:
    values = {name: value for name, value in payload.items() if name in _QUESTION_FIELDS}
    values["origin"] = ChannelKind(values.get("origin", ChannelKind.public_channel))
    return Question(**values)


class Recovery:
    """Resumes orphaned answers (on the lease thread) and answers deferred questions (from the spool)."""

    def __init__(self, ctx: SlackContext, answerer: Answerer, feedback: Feedback) -> None:
        self.ctx = ctx
        self.answerer = answerer
        self.feedback = feedback
        ctx.service.outbox.register("question", self.answer_deferred)
        ctx.leases.on_beat(self.resume_orphans)

    def resume_orphans(self) -> int:
        """Take over answers whose process died; returns how many this process took."""
        if self.ctx.stopping.is_set():
            return 0
        resumed = 0
        for key in self.ctx.leases.orphans("answer"):
            taken = self.ctx.leases.take_over(key)
            if taken is None:
                continue  # another replica was quicker
            payload = taken.payload.get("question")
            if not isinstance(payload, dict):
                log.error("claim %s has no question to resume; finishing it", key)
                self.ctx.leases.finish(key)
                continue
            question = question_from(payload)
            attempts = int(taken.payload.get("attempts", 0))
            CLAIMS_RESUMED.labels(how="scan").inc()
            resumed += 1
            if attempts >= MAX_ATTEMPTS:
                log.error(
                    "the answer to %s/%s failed %d times; giving up", question.channel, question.ts, attempts
                )
                self._give_up(question, taken.payload.get("placeholder_ts"))
                self.ctx.leases.finish(key)
                continue
            log.warning(
                "resuming the answer to %s/%s left unfinished by a process that stopped",
                question.channel,
                question.ts,
            )
            self.answerer.start(question, taken)
        return resumed

    def answer_deferred(self, payload: dict[str, Any]) -> None:
        """Spool applier: claim and answer a question asked during an outage (raises while it lasts)."""
        question = question_from(payload)
        if question.may_be_correction and not self.feedback.is_answer_thread(
            question.channel, question.thread_ts, deferred=True
        ):
            return  # a reply in a thread tanya never answered: none of its business
        if question.may_be_correction and self.feedback.take_thread_reply(
            question.channel,
            question.thread_ts,
            question.user,
            question.text,
            key=f"correction:thread:{question.channel}:{question.ts}",
            deferred=True,
        ):
            return  # it was the correction the person owed: saved, whatever its age
        age_minutes = (time.time() - float(payload.get("spooled_at") or question.ts)) / 60
        if age_minutes > self.ctx.settings.deferred_question_minutes:
            log.warning(
                "question %s/%s waited %.0f minutes for the database; asking to ask again",
                question.channel,
                question.ts,
                age_minutes,
            )
            self._post(question, render.TOO_LATE)
            return
        self.answerer.handle(question, deferred=True)

    def _give_up(self, question: Question, placeholder_ts: Any) -> None:
        message = render.apology("restarts")
        if placeholder_ts:
            try:
                self.ctx.client.chat_update(
                    channel=question.channel,
                    ts=str(placeholder_ts),
                    text=message,
                    blocks=render.problem_blocks(message),
                )
                return
            except Exception as exc:
                log.warning("could not update %s/%s: %s", question.channel, placeholder_ts, exc)
        self._post(question, message)

    def _post(self, question: Question, message: str) -> None:
        post_problem(self.ctx.client, question, message)
