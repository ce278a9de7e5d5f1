"""The app manifest asks for what the code uses: its events have listeners and its command is ``/tanya``."""

from __future__ import annotations

import yaml

from bot.slack.commands import COMMAND
from tests.conftest import REPO_ROOT

MANIFEST = REPO_ROOT / "deploy" / "slack-manifest.yml"

# Event subscriptions and the listener (event type) that handles each one.
HANDLED = {
    "app_mention": "app_mention",
    "message.channels": "message",
    "message.groups": "message",
    "message.im": "message",
    "message.mpim": "message",
    "reaction_added": "reaction_added",
    "reaction_removed": "reaction_removed",
    "app_home_opened": "app_home_opened",
}


def test_manifest_events_command_and_interactivity_match_the_code(make_bot) -> None:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    settings = manifest["settings"]
    assert sorted(settings["event_subscriptions"]["bot_events"]) == sorted(HANDLED)
    assert settings["interactivity"]["is_enabled"] is True
    assert [command["command"] for command in manifest["features"]["slash_commands"]] == [COMMAND]
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "commands", "reactions:read", "im:history"} <= scopes
    assert not {"reactions:write", "chat:write.public", "users:read.email", "im:write"} & scopes

    bot = make_bot()
    registered = set()
    for listener in bot.runtime.app._listeners:
        by_type = listener.matchers[0]  # Bolt puts the event-type matcher first
        for event_type in set(HANDLED.values()):
            body = {"type": "event_callback", "event": {"type": event_type}}
            if listener.lazy_functions and by_type.func(body=body):
                registered.add(event_type)
    assert registered == set(HANDLED.values()), "each subscribed event has a working (lazy) listener"
