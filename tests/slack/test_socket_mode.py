"""Socket Mode against a local WebSocket server: envelopes acknowledged, concurrent copies answered once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.slack import slack_requests as slack
from tests.slack.emulator import APP_TOKEN, BOT_TOKEN
from tests.slack.socket_server import SocketModeServer, events_api_envelope

USER = "UASKER0004"


@pytest.fixture
def socket_server(emulator):
    with SocketModeServer() as server:
        emulator.socket_url = server.url
        yield server


@pytest.mark.model
def test_duplicate_envelopes_are_acknowledged_and_answered_once(make_bot, socket_server, emulator) -> None:
    bot = make_bot(model=True, socket_mode=True)
    assert bot.runtime.socket_mode and bot.server is None
    slack.wait_until(socket_server.connected, timeout=30, what="the bot to connect")
    assert len(emulator.calls_to("apps.connections.open")) == 1

    channel, ts = "CSOCKET001", slack.new_ts()
    body = slack.event_callback(
        slack.app_mention("How do I connect to the VPN?", user=USER, channel=channel, ts=ts)
    )
    socket_server.send(
        events_api_envelope(body, envelope_id="env-first"),
        events_api_envelope(body, envelope_id="env-second"),
    )
    slack.wait_until(
        lambda: sorted(socket_server.acked()) == ["env-first", "env-second"],
        timeout=30,
        what="both envelopes to be acknowledged",
    )
    bot.wait_for_answer(channel, ts)
    bot.settle()
    assert len([c for c in emulator.calls_to("chat.postMessage") if c.args["channel"] == channel]) == 1
    assert len(bot.interactions(channel_id=channel)) == 1


def test_slash_commands_work_over_socket_mode(make_bot, socket_server, emulator) -> None:
    make_bot(socket_mode=True)
    slack.wait_until(socket_server.connected, timeout=30, what="the bot to connect")
    command = {
        "envelope_id": "env-command",
        "type": "slash_commands",
        "accepts_response_payload": True,
        "payload": {
            "token": "x",
            "team_id": "T0TANYA",
            "channel_id": "CSOCKET002",
            "user_id": "UNOBODY002",
            "command": "/tanya",
            "text": "retrain",
            "api_app_id": "ATANYA",
            "response_url": emulator.response_url("socket-retrain"),
            "trigger_id": "trigger.1",
        },
    }
    socket_server.send(command)
    slack.wait_until(lambda: "env-command" in socket_server.acked(), timeout=30, what="the command's ack")
    [reply] = slack.wait_until(lambda: emulator.responses("socket-retrain"), timeout=30, what="the refusal")
    assert "Only tanya admins" in reply.args["text"]


@pytest.mark.model
def test_tanya_serve_command_uses_socket_mode_when_an_app_token_is_set(
    socket_server, emulator, tmp_path, model_cache
):
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLACK_")}
    env.update(
        TANYA_HOME=str(home),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_API_URL=emulator.api_url,
    )
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("tanya")), "serve"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def connected() -> bool:
            if process.poll() is not None:
                raise AssertionError(process.stdout.read() if process.stdout else "tanya serve exited")
            return socket_server.connected()

        slack.wait_until(connected, timeout=180, interval=0.1, what="tanya serve to connect")
        socket_server.send(
            {
                "envelope_id": "env-help",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": {
                    "command": "/tanya",
                    "text": "help",
                    "user_id": "U1",
                    "channel_id": "C1",
                    "team_id": "T0TANYA",
                    "response_url": emulator.response_url("help"),
                    "trigger_id": "t.1",
                },
            }
        )
        [ack] = slack.wait_until(
            lambda: [m for m in socket_server.received if m.get("envelope_id") == "env-help"],
            timeout=30,
            what="the acknowledgement",
        )
        assert "/tanya retrain" in ack["payload"]["text"], "help is answered in the acknowledgement itself"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "connected to Slack in Socket Mode" in output and "Traceback" not in output
