"""The Bolt app factory: one ``App`` with every listener tanya needs, in a fixed order.

Choices, and why:

* ``process_before_response=True`` — acknowledgement functions run inline and are trivial, so the HTTP
  response (or Socket Mode ack) goes out in milliseconds; all real work is in lazy listeners.
* A larger listener pool than Bolt's default of five, so a burst of events never queues acknowledgements
  behind lazy work; generation itself runs on the separate, small answer pool. Lazy work starts only
  once the acknowledgements in flight are sent (``bot.slack.priority``).
* ``auth.test`` at start-up (token verification): a wrong token fails ``tanya serve`` at once, in one line,
  instead of on the first event.
* Catch-all listeners last, so no event type, action or view ever gets Bolt's 404 (which Slack retries).
* One global middleware, first, that counts each verified delivery for the metrics.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor, ThreadPoolExecutor

from slack_bolt import App

from bot.slack import actions, commands, home, messages, reactions
from bot.slack.answering import Answerer
from bot.slack.context import SlackContext
from bot.slack.feedback import Feedback
from bot.slack.instrumentation import count_delivery
from bot.slack.priority import AckFirstExecutor
from bot.slack.recovery import Recovery

LISTENER_THREADS = 8


def build_app(
    ctx: SlackContext,
    *,
    socket_mode: bool = False,
    verify_token: bool = True,
    listener_executor: Executor | None = None,
) -> App:
    settings = ctx.settings
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    app = App(
        name="tanya",
        client=ctx.client,
        signing_secret=secret,
        token_verification_enabled=verify_token,
        request_verification_enabled=not socket_mode,
        process_before_response=True,
        listener_executor=AckFirstExecutor(
            listener_executor
            or ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="tanya-slack"),
            ctx.acks,
        ),
        logger=logging.getLogger("tanya.slack.bolt"),
    )
    app.use(count_delivery)
    feedback = Feedback(ctx)
    answerer = Answerer(ctx)
    Recovery(ctx, answerer, feedback)  # resumes orphaned answers and answers deferred questions
    messages.register(app, messages.MessageRouter(ctx, answerer, feedback))
    reactions.register(app, reactions.ReactionVotes(ctx, feedback))
    actions.register(app, actions.AnswerActions(feedback))
    commands.register(app, commands.TanyaCommand(ctx))
    home.register(app, home.AppHome(ctx))
    actions.register_catch_alls(app)
    return app
