"""What kind of conversation a channel is: public, private, or a direct message.

The answer decides whether an interaction may be used for training (``train_on_private``), so an unknown
channel is treated as private. ``message`` events say it outright (``channel_type``); ``app_mention``
events do not, so their channel is looked up once with ``conversations.info`` and remembered.
"""

from __future__ import annotations

import logging
import threading

from slack_sdk import WebClient

from bot.slack.text import origin_from_channel_type, origin_from_conversation
from storage import ChannelKind

log = logging.getLogger(__name__)


class ChannelKinds:
    """Which kind of conversation a channel is (public, private, DM), asked of Slack once and remembered."""

    def __init__(self, client: WebClient, *, max_entries: int = 10_000) -> None:
        self.client = client
        self.max_entries = max_entries
        self._known: dict[str, ChannelKind] = {}
        self._lookups: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def remember(self, channel: str, channel_type: str | None) -> ChannelKind | None:
        kind = origin_from_channel_type(channel_type)
        if kind is not None and channel:
            with self._lock:
                if len(self._known) >= self.max_entries:
                    self._known.clear()
                    self._lookups.clear()
                self._known[channel] = kind
        return kind

    def origin(self, channel: str, channel_type: str | None = None) -> ChannelKind:
        kind = self.remember(channel, channel_type)
        if kind is not None:
            return kind
        with self._lock:
            kind = self._known.get(channel)
        if kind is not None:
            return kind
        if channel.startswith("D"):
            return self._store(channel, ChannelKind.direct_message)
        with self._lookup_lock(channel):
            with self._lock:
                kind = self._known.get(channel)
            if kind is not None:  # looked up by another thread meanwhile
                return kind
            try:
                info = self.client.conversations_info(channel=channel)["channel"] or {}
            except Exception as exc:  # missing scope or a Slack hiccup: assume private
                log.warning("conversations.info for %s failed (%s); treating it as private", channel, exc)
                return ChannelKind.private_channel
            return self._store(channel, origin_from_conversation(info))

    def _lookup_lock(self, channel: str) -> threading.Lock:
        """One lookup per channel at a time: a burst of mentions costs one API call, not fifty."""
        with self._lock:
            return self._lookups.setdefault(channel, threading.Lock())

    def _store(self, channel: str, kind: ChannelKind) -> ChannelKind:
        with self._lock:
            self._known[channel] = kind
        return kind
