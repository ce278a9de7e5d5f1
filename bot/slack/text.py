"""Slack's text conventions: mentions, escapes, reaction names and channel types.

Kept apart from the listeners because every rule here is easy to get subtly wrong (an unescaped ``<``
in a model's answer can ping a whole channel) and is cheap to test on its own.
"""

from __future__ import annotations

import html
import re

from storage import ChannelKind

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_SKIN_TONE = re.compile(r"::skin-tone-\d$")

UP_REACTIONS = frozenset({"+1", "thumbsup"})
DOWN_REACTIONS = frozenset({"-1", "thumbsdown"})


def mentions(text: str, user_id: str | None) -> bool:
    """Whether ``text`` @mentions ``user_id`` (Slack writes mentions as ``<@U123>``)."""
    return bool(user_id) and any(match == user_id for match in _MENTION.findall(text or ""))


def clean_question(text: str, bot_user_id: str | None) -> str:
    """The question as a person would read it: without the bot's mention, links and HTML escapes undone."""
    text = text or ""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    text = _SPECIAL.sub(lambda m: f"@{m.group(1)}", text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    text = html.unescape(text)
    return re.sub(r"[ \t]+", " ", text).strip()


def escape(text: str) -> str:
    """Make text literal in mrkdwn: no ``<!channel>`` pings or fake links from model output."""
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vote_from_reaction(name: str) -> bool | None:
    """True for 👍, False for 👎 (any skin tone), None for every other reaction."""
    base = _SKIN_TONE.sub("", (name or "").strip(":"))
    if base in UP_REACTIONS:
        return True
    if base in DOWN_REACTIONS:
        return False
    return None


def origin_from_channel_type(channel_type: str | None) -> ChannelKind | None:
    """Slack's ``channel_type`` as stored on interactions; None when Slack did not say."""
    return {
        "channel": ChannelKind.public_channel,
        "group": ChannelKind.private_channel,
        "mpim": ChannelKind.private_channel,
        "im": ChannelKind.direct_message,
    }.get(channel_type or "")


def origin_from_conversation(info: dict) -> ChannelKind:
    """``conversations.info``'s channel object as an origin; unknown shapes count as private."""
    if info.get("is_im"):
        return ChannelKind.direct_message
    if info.get("is_mpim") or info.get("is_private") or info.get("is_group"):
        return ChannelKind.private_channel
    if info.get("is_channel"):
        return ChannelKind.public_channel
    return ChannelKind.private_channel


def shorten(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
