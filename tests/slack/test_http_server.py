"""HTTP mode's server on its own: a minimal Bolt app behind ``SlackAsgiApp``, no models loaded.

What the scenario tests cannot see: what the port answers before the models are loaded, that a slow
acknowledgement does not hold up other connections, bursts, limits and shutdown.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from slack_bolt import Ack, App
from slack_bolt.authorization import AuthorizeResult

from bot.service import InputError
from bot.slack.asgi import MAX_BODY_BYTES, SlackAsgiApp
from bot.slack.ops import OpsEndpoints
from bot.slack.priority import AckFirst, AckFirstExecutor
from bot.slack.server import HttpServer
from storage import Database
from tests.slack import slack_requests as slack
from tests.slack.emulator import SIGNING_SECRET


def _bolt_app(release: threading.Event, acks: AckFirst | None = None) -> App:
    lazy_started: list[int] = []
    authorized = AuthorizeResult(
        enterprise_id=None, team_id="T1", bot_token="xoxb-x", bot_user_id="UB", bot_id="B1"
    )
    app = App(
        signing_secret=SIGNING_SECRET,
        authorize=lambda **_: authorized,
        process_before_response=True,
        listener_executor=AckFirstExecutor(ThreadPoolExecutor(max_workers=2), acks or AckFirst()),
    )
    app.lazy_started = lazy_started  # type: ignore[attr-defined]

    @app.event("message")
    def chatter(ack: Ack) -> None:
        ack()

    def answer(body: dict) -> None:  # what was still being acknowledged when the lazy work began
        lazy_started.append(acks.acknowledging if acks else -1)

    app.event("app_mention")(ack=lambda ack: ack(), lazy=[answer])

    @app.command("/tanya")
    def slow(ack: Ack) -> None:  # stands for an acknowledgement that waits on the database
        release.wait(timeout=30)
        ack(text="done")

    return app


@pytest.fixture
def server(tmp_path: Path) -> Iterator[HttpServer]:
    running = HttpServer("127.0.0.1", 0)
    yield running
    running.stop()


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def _serve_bolt(server: HttpServer, tmp_path: Path, release: threading.Event) -> SlackAsgiApp:
    database = Database(f"sqlite:///{tmp_path / 'tanya.db'}")
    acks = AckFirst(max_wait=30)
    asgi = SlackAsgiApp(_bolt_app(release, acks), OpsEndpoints(database), acks=acks)
    server.start(asgi)
    return asgi


def _chatter(number: int) -> str:
    event = {"type": "message", "channel": "C1", "user": "U2", "text": "hi", "ts": f"1.{number}"}
    return json.dumps(slack.event_callback(event, event_id=f"Ev{number}"))


def test_before_start_it_is_alive_but_not_ready(server: HttpServer) -> None:
    health = slack.get(f"{server.url}/healthz")
    assert health.status == 200 and health.json() == {"status": "starting"}
    assert slack.get(f"{server.url}/readyz").status == 503
    event = slack.post(f"{server.url}/slack/events", _chatter(1))
    assert event.status == 503, "Slack retries a 503 later; nothing is acknowledged unprocessed"
    assert event.headers.get("retry-after") == "5"


def test_after_start_it_serves_bolt_and_the_operators(server: HttpServer, tmp_path: Path, release) -> None:
    _serve_bolt(server, tmp_path, release)
    assert slack.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert slack.get(f"{server.url}/readyz").json() == {"status": "ok", "database": "ok"}
    assert slack.post(f"{server.url}/slack/events", _chatter(1)).status == 200
    assert slack.post(f"{server.url}/slack/events", _chatter(2), secret="wrong").status == 401
    assert slack.get(f"{server.url}/slack/events").status == 405
    assert slack.get(f"{server.url}/elsewhere").status == 404


def test_an_oversized_body_is_refused_unread(server: HttpServer, tmp_path: Path, release) -> None:
    asgi = _serve_bolt(server, tmp_path, release)
    with socket.create_connection((server.host, server.port), timeout=10) as connection:
        connection.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: tanya\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
        )
        status_line = connection.makefile("rb").readline()
    assert status_line.startswith(b"HTTP/1.1 413"), "answered from the headers, before any of the body"
    assert slack.post(f"{server.url}/slack/events", _chatter(3)).status == 200
    assert slack.post(f"{server.url}/slack/events", "{not json").status == 400
    assert asgi.acks.acknowledging == 0, "refusals are counted out too"


def test_lazy_work_begins_only_once_its_acknowledgement_is_sent(
    server: HttpServer, tmp_path: Path, release
) -> None:
    asgi = _serve_bolt(server, tmp_path, release)
    assert asgi.bolt is not None
    for number in range(5):
        mention = {
            "type": "app_mention",
            "channel": "C1",
            "user": "U2",
            "text": "<@UB> hi",
            "ts": f"2.{number}",
        }
        body = json.dumps(slack.event_callback(mention, event_id=f"EvM{number}"))
        assert slack.post(f"{server.url}/slack/events", body).status == 200
    started = slack.wait_until(
        lambda: len(asgi.bolt.lazy_started) == 5 and asgi.bolt.lazy_started, timeout=30, what="lazy work"
    )
    assert started == [0] * 5


def test_a_slow_acknowledgement_holds_up_no_other_request(
    server: HttpServer, tmp_path: Path, release
) -> None:
    asgi = _serve_bolt(server, tmp_path, release)
    replies: list[slack.Reply] = []
    body = slack.slash_command("", user="U1", channel="C1", response_url="http://127.0.0.1:9/r")
    waiting = threading.Thread(
        target=lambda: replies.append(
            slack.post(f"{server.url}/slack/events", body, content_type="application/x-www-form-urlencoded")
        )
    )
    waiting.start()
    try:
        for number in range(5):
            assert slack.post(f"{server.url}/slack/events", _chatter(number), timeout=10).status == 200
        assert slack.get(f"{server.url}/readyz", timeout=10).status == 200
        assert replies == [], "the slow acknowledgement is still waiting"
        assert asgi.acks.acknowledging == 1, "the slow one is still counted, the others are done"
    finally:
        release.set()
        waiting.join(timeout=30)
    assert replies[0].status == 200 and "done" in replies[0].body
    assert asgi.acks.acknowledging == 0


def test_a_burst_of_fifty_is_acknowledged_in_full(server: HttpServer, tmp_path: Path, release) -> None:
    _serve_bolt(server, tmp_path, release)
    barrier = threading.Barrier(50)

    def send(number: int) -> int:
        barrier.wait(timeout=30)
        return slack.post(f"{server.url}/slack/events", _chatter(number)).status

    with ThreadPoolExecutor(max_workers=50) as senders:
        statuses = list(senders.map(send, range(50)))
    assert statuses == [200] * 50


def test_a_busy_port_is_refused_and_a_stopped_one_is_free(tmp_path: Path) -> None:
    first = HttpServer("127.0.0.1", 0)
    with pytest.raises(InputError, match=f"cannot listen on 127.0.0.1:{first.port}"):
        HttpServer("127.0.0.1", first.port)
    first.stop()
    with socket.create_server(("127.0.0.1", first.port)):
        pass
