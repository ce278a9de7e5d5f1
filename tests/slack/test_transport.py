"""The HTTP endpoint itself: verification, signatures, bad input, health, and the real ``tanya serve``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from storage import Database
from tests.conftest import REPO_ROOT
from tests.slack import slack_requests as slack
from tests.slack.emulator import BOT_TOKEN, SIGNING_SECRET

TANYA = str(Path(sys.executable).with_name("tanya"))


def test_signatures_match_slack_sdk() -> None:
    body, stamp = '{"type":"url_verification"}', int(time.time())
    verifier = SignatureVerifier(SIGNING_SECRET)
    assert verifier.is_valid(body, stamp, slack.signature(body, stamp))
    assert not verifier.is_valid(body, stamp, slack.signature(body, stamp, "another secret"))


def test_url_verification_echoes_the_challenge(make_bot) -> None:
    bot = make_bot()
    reply = bot.send_body(
        {
            "token": "x",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    assert reply.status == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in reply.body


@pytest.mark.parametrize(
    ("secret", "age_seconds"),
    [("not the signing secret", 0), (SIGNING_SECRET, 6 * 60), (None, 0)],
    ids=["bad-signature", "stale-timestamp", "unsigned"],
)
def test_unverified_requests_are_refused(make_bot, secret: str | None, age_seconds: int) -> None:
    bot = make_bot()
    body = json.dumps(slack.event_callback(slack.app_mention("hello", user="U1", channel="C1")))
    reply = slack.post(bot.events_url, body, secret=secret, timestamp=int(time.time()) - age_seconds)
    assert reply.status == 401
    assert bot.emulator.calls_to("chat.postMessage") == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"type": "event_callback", "event": ', "application/json"),
        ("[1, 2, 3]", "application/json"),
        ("payload=%7Bnot-json", "application/x-www-form-urlencoded"),
        ("\xff\xfe", "application/json"),
    ],
    ids=["truncated-json", "json-array", "bad-form-payload", "not-utf8"],
)
def test_malformed_bodies_get_400_and_the_bot_keeps_working(make_bot, body: str, content_type: str) -> None:
    bot = make_bot()
    reply = slack.post(bot.events_url, body.encode("latin-1"), content_type=content_type)
    assert reply.status == 400
    assert slack.get(f"{bot.server.url}/healthz").status == 200
    challenge = bot.send_body({"type": "url_verification", "challenge": "still-alive", "token": "x"})
    assert challenge.status == 200 and "still-alive" in challenge.body


def test_health_and_readiness(make_bot) -> None:
    bot = make_bot()
    health = slack.get(f"{bot.server.url}/healthz")
    assert health.status == 200 and health.json() == {"status": "ok"}
    ready = slack.get(f"{bot.server.url}/readyz")
    assert ready.status == 200
    assert ready.json() == {"status": "ok", "database": "ok", "document_store": "ok", "generator": "ok"}
    assert slack.get(f"{bot.server.url}/nothing-here").status == 404

    http_app = bot.server.app
    working, http_app.database = http_app.database, Database("postgresql+psycopg://tanya@127.0.0.1:9/down")
    try:
        down = slack.get(f"{bot.server.url}/readyz")
        assert down.status == 503 and down.json()["status"] == "unavailable"
        assert slack.get(f"{bot.server.url}/healthz").status == 200, "alive, just not ready"
    finally:
        http_app.database.dispose()
        http_app.database = working


class _BrokenStore:
    def count_documents(self) -> int:
        raise ConnectionError("Elasticsearch at http://127.0.0.1:9 refused the connection")


def test_readiness_needs_the_document_store_and_the_generator(make_bot) -> None:
    bot = make_bot()
    service = bot.service
    store = service.__dict__["document_store"]
    service.__dict__["document_store"] = _BrokenStore()
    try:
        down = slack.get(f"{bot.server.url}/readyz")
        assert down.status == 503
        assert down.json()["database"] == "ok" and down.json()["generator"] == "ok"
        assert down.json()["document_store"].startswith("unavailable: Elasticsearch at")
        assert slack.get(f"{bot.server.url}/healthz").status == 200
    finally:
        service.__dict__["document_store"] = store
    generator = service.__dict__.pop("generator")
    try:
        loading = slack.get(f"{bot.server.url}/readyz")
        assert loading.status == 503 and loading.json()["generator"] == "not loaded"
    finally:
        service.__dict__["generator"] = generator
    assert slack.get(f"{bot.server.url}/readyz").status == 200


def test_a_served_generator_is_ready_only_while_its_server_answers(make_bot) -> None:
    """TANYA_GENERATOR=http://…/v1: readiness asks that server for its models (GET /v1/models)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from bot.slack.readiness import generator_status

    seen: list[tuple[str, str | None]] = []

    class Models(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    bot = make_bot()
    service = bot.service
    original = service.settings
    server = ThreadingHTTPServer(("127.0.0.1", 0), Models)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        service.settings = original.model_copy(
            update={"generator": f"{base}/v1", "generator_api_key": SecretStr("k")}
        )
        assert generator_status(service) == "ok"
        assert slack.get(f"{bot.server.url}/readyz").status == 200
        assert seen[-1][0] == "/v1/models" and seen[-1][1] == "Bearer k"
        service.settings = original.model_copy(update={"generator": f"{base}/elsewhere"})
        assert generator_status(service) == f"unavailable: HTTP 404 from {base}/elsewhere/models"
        server.shutdown()
        server.server_close()
        service.settings = original.model_copy(update={"generator": f"{base}/v1"})
        assert generator_status(service).startswith("unavailable:")
        assert slack.get(f"{bot.server.url}/readyz").status == 503
    finally:
        service.settings = original
        server.shutdown()
        server.server_close()


def test_every_subscribed_event_type_is_acknowledged(make_bot) -> None:
    """No 404 (which Slack retries), not even for event types tanya has no use for."""
    bot = make_bot()
    for event in (
        {"type": "member_joined_channel", "user": "U1", "channel": "C1", "event_ts": slack.new_ts()},
        {
            "type": "app_home_opened",
            "user": "U1",
            "channel": "D1",
            "tab": "messages",
            "event_ts": slack.new_ts(),
        },
        {"type": "app_uninstalled", "event_ts": slack.new_ts()},
        slack.message(
            "edited",
            user=None,
            channel="C1",
            channel_type="channel",
            subtype="message_changed",
            message={"text": "x", "user": "U1"},
        ),
        slack.message("gone", user=None, channel="C1", channel_type="channel", subtype="message_deleted"),
    ):
        assert bot.send_event(event).status == 200, event["type"]
    bot.settle()
    assert bot.emulator.calls_to("chat.postMessage") == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_serve(emulator, tmp_path: Path, model_cache: Path) -> tuple[subprocess.Popen[str], int]:
    """``tanya serve`` in HTTP mode, in a subprocess, against the emulator; returns it and its port."""
    port = _free_port()
    process = subprocess.Popen(
        [TANYA, "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT,
        env=_serve_env(emulator, tmp_path, model_cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, port


def _serve_env(emulator, tmp_path: Path, model_cache: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    env = {
        **os.environ,
        "TANYA_HOME": str(home),
        "TANYA_MAX_NEW_TOKENS": "24",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": emulator.api_url,
    }
    env.pop("SLACK_APP_TOKEN", None)
    return env


def _health(port: int, process: subprocess.Popen[str]) -> str | None:
    """``/healthz``'s status word, or None while nothing listens yet."""
    if process.poll() is not None:
        raise AssertionError(f"tanya serve exited: {process.stdout.read() if process.stdout else ''}")
    try:
        health = slack.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except OSError:
        return None
    assert health.status == 200, "alive from the moment the port is bound"
    return health.json()["status"]


@pytest.mark.model
def test_tanya_serve_command_runs_http_mode(emulator, tmp_path: Path, model_cache: Path) -> None:
    """The real CLI entry point, in a subprocess: starts, verifies the token, serves, stops on SIGTERM."""
    pytest.importorskip(
        "retrieval.answering.pipeline", reason="the serve command loads the retrieval pipeline"
    )
    process, port = _start_serve(emulator, tmp_path, model_cache)
    try:
        slack.wait_until(
            lambda: _health(port, process) == "ok", timeout=180, interval=0.2, what="tanya serve"
        )
        assert emulator.calls_to("auth.test"), "the token is checked at start-up"
        reply = slack.post(
            f"http://127.0.0.1:{port}/slack/events",
            json.dumps({"type": "url_verification", "challenge": "cli", "token": "x"}),
        )
        assert reply.status == 200 and "cli" in reply.body
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "listening on http://127.0.0.1" in output
    assert "Traceback" not in output


@pytest.mark.model
def test_tanya_serve_answers_health_checks_while_loading_and_stops_cleanly(
    emulator, tmp_path: Path, model_cache: Path
) -> None:
    """An orchestrator probes and may stop the bot while the models load: alive, not ready, clean exit."""
    pytest.importorskip(
        "retrieval.answering.pipeline", reason="the serve command loads the retrieval pipeline"
    )
    process, port = _start_serve(emulator, tmp_path, model_cache)
    try:
        slack.wait_until(
            lambda: _health(port, process) is not None, timeout=60, interval=0.05, what="the port"
        )
        ready = slack.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        status = _health(port, process)  # asked second: "starting" now means it was starting then
        if status == "ok":
            pytest.skip("the models loaded before the first probe: nothing to check during start-up")
        assert status == "starting" and ready.status == 503
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "listening on" not in output, "stopped before it was up"
    assert "tanya stopped." in output and "Traceback" not in output


def test_serve_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLACK_")}
    env["TANYA_HOME"] = str(tmp_path)
    result = subprocess.run(
        [TANYA, "serve"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_reports_a_rejected_token_in_one_line(emulator, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLACK_")}
    env.update(
        TANYA_HOME=str(tmp_path),
        SLACK_BOT_TOKEN="xoxb-revoked",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=emulator.api_url,
    )
    result = subprocess.run(
        [TANYA, "serve", "--port", str(_free_port())],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "invalid_auth" in result.stderr and "SLACK_BOT_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr
    assert emulator.calls_to("auth.test")


def test_serve_reports_a_busy_port_before_loading_anything(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLACK_")}
    env.update(TANYA_HOME=str(tmp_path), SLACK_BOT_TOKEN="xoxb-x", SLACK_SIGNING_SECRET="s")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [TANYA, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr
