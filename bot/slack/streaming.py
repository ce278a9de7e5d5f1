"""Streaming an answer into one Slack message without tripping rate limits.

Tokens arrive many times a second; Slack tolerates about one ``chat.update`` per second per message.
A background thread therefore publishes the latest text at most once per ``interval``, and the final
update waits out the same interval, so the limit holds even for answers that finish quickly.
Generation never waits on Slack: ``append`` only stores text.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack import render

log = logging.getLogger(__name__)


class StreamingMessage:
    """An existing message (``channel``, ``ts``) that is rewritten as text streams in."""

    def __init__(
        self,
        client: WebClient,
        channel: str,
        ts: str,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.channel = channel
        self.ts = ts
        self.interval = interval
        self._clock = clock
        self._text = ""
        self._published = ""
        self._last_update: float | None = None  # no chat.update yet: the first one may go at once
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._stopped = threading.Event()
        self.updates = 0
        self._thread = threading.Thread(target=self._run, name=f"slack-stream-{ts}", daemon=True)
        self._thread.start()

    def append(self, chunk: Any) -> None:
        """Streaming callback for the generator: takes a Haystack ``StreamingChunk`` or a string."""
        text = chunk if isinstance(chunk, str) else getattr(chunk, "content", "") or ""
        if text:
            with self._lock:
                self._text += text
            self._changed.set()

    def finish(self, *, text: str, blocks: list[dict[str, Any]]) -> bool:
        """Stop streaming and write the final message; False if Slack refused it."""
        self._stopped.set()
        self._changed.set()
        self._thread.join()
        self._wait_for_slot()
        return self._update(text=text, blocks=blocks)

    # -- internals --------------------------------------------------------------------------------

    def _remaining(self) -> float:
        """Seconds until the next chat.update is allowed for this message."""
        if self._last_update is None:
            return 0.0
        return self.interval - (self._clock() - self._last_update)

    def _wait_for_slot(self) -> None:
        remaining = self._remaining()
        if remaining > 0:
            time.sleep(remaining)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._changed.wait()
            if self._stopped.is_set():
                return
            remaining = self._remaining()
            if remaining > 0 and self._stopped.wait(remaining):
                return
            with self._lock:
                text = self._text
                self._changed.clear()
            if text.strip() and text != self._published:
                self._update(text=text, blocks=render.partial_blocks(text))
                self._published = text

    def _update(self, *, text: str, blocks: list[dict[str, Any]]) -> bool:
        try:
            self.client.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=blocks)
            return True
        except SlackApiError as exc:
            log.warning("chat.update of %s/%s failed: %s", self.channel, self.ts, exc.response.get("error"))
            return False
        except Exception as exc:  # a network hiccup must not lose the final answer's log
            log.warning("chat.update of %s/%s failed: %s", self.channel, self.ts, exc)
            return False
        finally:
            self._last_update = self._clock()
            self.updates += 1
