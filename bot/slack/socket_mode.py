"""Socket Mode: the bot dials out to Slack over a WebSocket, so it needs no public URL.

Bolt's ``SocketModeHandler`` (slack_sdk's built-in client, no extra dependency) handles envelopes
concurrently; duplicates that arrive together are stopped by the SQL claim, not by this layer.
``apps.connections.open`` goes through the same client as every other call, hence ``SLACK_API_URL``.
"""

from __future__ import annotations

import logging

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler

log = logging.getLogger(__name__)

ENVELOPE_THREADS = 16


def connect_socket_mode(app: App, app_token: str) -> SocketModeHandler:
    handler = SocketModeHandler(
        app,
        app_token=app_token,
        web_client=app.client,
        logger=logging.getLogger("tanya.slack.socket"),
        concurrency=ENVELOPE_THREADS,
    )
    handler.connect()
    log.info("connected to Slack in Socket Mode")
    return handler
