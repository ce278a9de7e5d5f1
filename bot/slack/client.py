"""The Web API client every Slack call goes through.

One client for the whole process, so ``SLACK_API_URL`` (a proxy, a test emulator, a GovSlack host)
applies everywhere, and so rate limits are honoured in one place: a 429 is retried after the
``Retry-After`` Slack sends, a 5xx or a dropped connection with back-off, all until one deadline per
call (``bot.slack.retries``) — instead of losing an answer. ``chat.postMessage`` is the exception for
5xx and dropped connections: ``bot.slack.delivery`` looks the message up before posting it again.
Errors are counted on the way (``bot.slack.instrumentation``), retries by their handlers.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient

from bot.settings import Settings
from bot.slack.instrumentation import CountingWebClient
from bot.slack.retries import (
    DEFAULT_DEADLINE_SECONDS,
    ConnectionRetryHandler,
    RateLimitedRetryHandler,
    ServerErrorRetryHandler,
)

DEFAULT_API_URL = "https://slack.com/api/"


def api_base_url(settings: Settings) -> str:
    url = (settings.slack_api_url or DEFAULT_API_URL).strip()
    return url if url.endswith("/") else url + "/"


def make_web_client(
    settings: Settings, *, timeout: int = 30, retry_deadline: float = DEFAULT_DEADLINE_SECONDS
) -> WebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return CountingWebClient(
        token=token,
        base_url=api_base_url(settings),
        timeout=timeout,
        logger=logging.getLogger("tanya.slack.web"),
        retry_handlers=[
            RateLimitedRetryHandler(retry_deadline),
            ServerErrorRetryHandler(retry_deadline),
            ConnectionRetryHandler(retry_deadline),
        ],
    )
