"""The buttons under each answer and the "Suggest a better answer" form.

Buttons vote exactly like reactions (one vote per person, ``source="button"``); the reply is ephemeral,
through the action's ``response_url``, so the channel sees no noise. The form's submission is stored
while Slack waits for the acknowledgement, so the form itself can show the outcome: a thank-you, or
an error next to the text (which is then not lost). While the database is unavailable, votes and
submissions are kept in the local spool and saved when it is back, and the person is told exactly that.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.slack import render
from bot.slack.feedback import Feedback

log = logging.getLogger(__name__)

SAVE_FAILED = "Could not save it just now because of a problem on my side — please try again in a minute."


def _interaction_id(action: dict[str, Any]) -> int | None:
    try:
        return int(action.get("value", ""))
    except (TypeError, ValueError):
        return None


class AnswerActions:
    """The 👍/👎 and correction buttons under an answer."""

    def __init__(self, feedback: Feedback) -> None:
        self.feedback = feedback

    def vote(self, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        up = action.get("action_id") == render.VOTE_UP
        interaction_id = _interaction_id(action)
        user = (body.get("user") or {}).get("id")
        if interaction_id is None or not user:
            return
        key = f"vote:button:{interaction_id}:{user}:{action.get('action_ts') or body.get('trigger_id')}"
        try:
            saved = self.feedback.vote_or_keep(interaction_id, user=user, up=up, source="button", key=key)
        except Exception:
            log.exception("could not record a button vote by %s on #%s", user, interaction_id)
            self._tell(respond, self.feedback.not_recorded(up))
            return
        self._tell(respond, self.feedback.thanks(up) if saved else self.feedback.saved_later(up))

    def open_suggestion(
        self, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        interaction_id = _interaction_id(action)
        if interaction_id is None:
            return
        try:
            answer = self.feedback.answer_by_id(interaction_id)
        except Exception:
            log.exception("could not load answer #%s for a suggestion", interaction_id)
            self._tell(respond, "Sorry — I cannot open the form right now. Please try again in a minute.")
            return
        if answer is None:
            self._tell(respond, "That answer no longer exists.")
            return
        metadata = json.dumps({"id": interaction_id})
        client.views_open(
            trigger_id=body["trigger_id"],
            view=render.suggest_modal(interaction_id, answer.question, metadata),
        )

    def save_suggestion(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """Runs before the acknowledgement, so errors can be shown in the form."""
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
            interaction_id = int(meta["id"])
        except (ValueError, KeyError, TypeError):
            ack(response_action="errors", errors={render.SUGGEST_BLOCK: "This form is out of date."})
            return
        values = (view.get("state") or {}).get("values") or {}
        text = ((values.get(render.SUGGEST_BLOCK) or {}).get(render.SUGGEST_INPUT) or {}).get("value") or ""
        if not text.strip():
            ack(response_action="errors", errors={render.SUGGEST_BLOCK: "Write the better answer here."})
            return
        user = (body.get("user") or {}).get("id") or "unknown"
        key = f"correction:modal:{view.get('id') or body.get('trigger_id')}"
        try:
            saved = self.feedback.correct_or_keep(
                interaction_id, user=user, text=text, source="slack_modal", key=key
            )
        except Exception:
            log.exception("could not store a suggested answer for #%s", interaction_id)
            ack(response_action="errors", errors={render.SUGGEST_BLOCK: SAVE_FAILED})
            return
        ack(response_action="update", view=render.suggest_thanks(interaction_id, saved=saved))

    @staticmethod
    def _tell(respond: Respond, text: str) -> None:
        try:
            respond(text=text, response_type="ephemeral", replace_original=False)
        except Exception as exc:
            log.warning("could not answer a button press: %s", exc)


def register(app: App, actions: AnswerActions) -> None:
    def acknowledge(ack: Ack) -> None:
        ack()

    def vote_button(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        actions.vote(body, action, respond)

    def suggest_button(
        body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        actions.open_suggestion(body, action, client, respond)

    def suggestion_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        actions.save_suggestion(ack, body, view)

    app.action(render.VOTE_UP)(ack=acknowledge, lazy=[vote_button])
    app.action(render.VOTE_DOWN)(ack=acknowledge, lazy=[vote_button])
    app.action(render.SUGGEST)(ack=acknowledge, lazy=[suggest_button])
    app.view(render.SUGGEST_VIEW)(suggestion_submitted)


def register_catch_alls(app: App) -> None:
    """Acknowledge whatever else arrives (link buttons, new event types) instead of answering 404.

    Slack retries a 404, and a user sees an error icon on a button that was not acknowledged.
    """

    def acknowledge(ack: Ack) -> None:
        ack()

    app.event(re.compile(".*"))(acknowledge)
    app.action(re.compile(".*"))(acknowledge)
    app.view(re.compile(".*"))(acknowledge)
    app.shortcut(re.compile(".*"))(acknowledge)
