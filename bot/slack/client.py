"""The Web API client every Slack call goes through.

One client for the whole process, so ``SLACK_API_URL`` (a proxy, a test emulator, a GovSlack host)
applies everywhere, and so rate limits are honoured in one place: a 429 is retried after the
``Retry-After`` Slack sends, a 500/503 once, a dropped connection once — instead of losing an answer.
Errors and retries are counted on the way (``bot.slack.instrumentation``).
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.settings import Settings
from bot.slack.instrumentation import CountingRetryHandler, CountingWebClient

DEFAULT_API_URL = "https://slack.com/api/"


def api_base_url(settings: Settings) -> str:
    url = (settings.slack_api_url or DEFAULT_API_URL).strip()
    return url if url.endswith("/") else url + "/"


def make_web_client(settings: Settings, *, timeout: int = 30) -> WebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return CountingWebClient(
        token=token,
        base_url=api_base_url(settings),
        timeout=timeout,
        logger=logging.getLogger("tanya.slack.web"),
        retry_handlers=[
            CountingRetryHandler(ConnectionErrorRetryHandler(max_retry_count=1), "connection"),
            CountingRetryHandler(RateLimitErrorRetryHandler(max_retry_count=3), "rate_limited"),
            CountingRetryHandler(ServerErrorRetryHandler(max_retry_count=2), "server_error"),
        ],
    )
