"""Who may retrain and roll back.

``TANYA_ADMINS`` lists Slack user ids. With ``TANYA_SLACK_WORKSPACE_ADMINS=true`` the workspace's own
admins and owners qualify too, checked with ``users.info`` and remembered for a few minutes so a busy
admin does not cost an API call per command. Any doubt (an API error) means "not an admin".
"""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient

from bot.settings import Settings

log = logging.getLogger(__name__)

CACHE_SECONDS = 300.0


class AdminCheck:
    """Whether a Slack user may run admin commands: listed in ``TANYA_ADMINS``, or a workspace admin if allowed."""

    def __init__(self, settings: Settings, client: WebClient) -> None:
        self.admins = frozenset(settings.admins)
        self.workspace_admins = settings.slack_workspace_admins
        self.client = client
        self._cache: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def is_admin(self, user_id: str | None) -> bool:
        if not user_id:
            return False
        if user_id in self.admins:
            return True
        if not self.workspace_admins:
            return False
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(user_id)
        if cached and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            user = self.client.users_info(user=user_id)["user"] or {}
            allowed = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        except Exception as exc:  # refuse rather than guess
            log.warning("users.info for %s failed: %s", user_id, exc)
            return False
        with self._lock:
            self._cache[user_id] = (now, allowed)
        return allowed

    def describe(self) -> str:
        """Who to ask, for the refusal message."""
        people = ", ".join(f"<@{user}>" for user in sorted(self.admins)) or "nobody is listed in TANYA_ADMINS"
        if self.workspace_admins:
            people += " and workspace admins"
        return people
