"""deploy/haproxy.cfg, the load balancer in front of the bot replicas: HAProxy accepts it, and with the
replicas replaced by two local servers it sends Slack's requests only to the one whose /readyz answers,
untouched, and keeps /metrics private. Loopback only."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.deploy.helpers import DEPLOY

CONFIG = DEPLOY / "haproxy.cfg"


@pytest.fixture(scope="module")
def haproxy() -> str:
    path = shutil.which("haproxy")
    if path is None:
        pytest.skip(
            "haproxy is not installed (apt-get install haproxy; .ci/run does): deploy/haproxy.cfg unchecked"
        )
    return path


def test_haproxy_accepts_the_config(haproxy: str) -> None:
    result = subprocess.run([haproxy, "-c", "-f", str(CONFIG)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _replica(name: str, ready: bool) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # stdlib naming
            if self.path == "/readyz":
                self._reply(200 if ready else 503, {"status": "ok" if ready else "starting"})
            else:
                self._reply(200, {"replica": name, "path": self.path})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._reply(
                200,
                {
                    "replica": name,
                    "body": body.decode(),
                    "signature": self.headers.get("X-Slack-Signature"),
                    "timestamp": self.headers.get("X-Slack-Request-Timestamp"),
                },
            )

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def local_config(text: str, listen: int, replicas: dict[str, int]) -> str:
    """The real config with compose's parts swapped for local ones: the public port, and the replicas
    that compose's DNS would list (its resolver section goes too, so nothing is asked of 127.0.0.11)."""
    text, binds = re.subn(r"^(\s*)bind :8080$", rf"\1bind 127.0.0.1:{listen}", text, flags=re.MULTILINE)
    template = re.search(
        r"^(\s*)server-template \S+ \d+ bot:3000 (check\b.*?) resolvers docker.*$", text, re.MULTILINE
    )
    assert binds == 1 and template, "haproxy.cfg no longer has the lines this test replaces"
    indent = template.group(1)
    # The real check options, only faster, so that the test does not wait 2 × 5 s for a verdict.
    check = re.sub(r"\binter \S+", "inter 100ms", template.group(2))
    servers = "\n".join(f"{indent}server {name} 127.0.0.1:{port} {check}" for name, port in replicas.items())
    text = text.replace(template.group(0), servers)
    return re.sub(r"^resolvers docker\n(?:[ \t]+.*\n)+", "", text, flags=re.MULTILINE)


@pytest.fixture
def balancer(haproxy: str, tmp_path: Path) -> Iterator[str]:
    ready, loading = _replica("ready", True), _replica("loading", False)
    listen = _free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        local_config(
            CONFIG.read_text(encoding="utf-8"),
            listen,
            {"ready": ready.server_address[1], "loading": loading.server_address[1]},
        )
    )
    with (tmp_path / "haproxy.log").open("w") as log:
        process = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "haproxy.log").read_text()
                assert time.monotonic() < deadline, "haproxy did not start listening"
                threading.Event().wait(0.05)
        yield f"http://127.0.0.1:{listen}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        for server in (ready, loading):
            server.shutdown()
            server.server_close()


def _post(base: str, body: bytes, headers: dict[str, str]) -> dict:
    request = urllib.request.Request(f"{base}/slack/events", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _status(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_slack_requests_reach_only_ready_replicas_untouched(balancer: str) -> None:
    body = b'{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention","text":"hi \\u00e9"}}'
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Signature": "v0=0123456789abcdef",
        "X-Slack-Request-Timestamp": "1700000000",
    }
    # The replica whose /readyz says 503 is taken out after two failed checks (200 ms here).
    deadline = time.monotonic() + 10
    streak = 0
    while streak < 4:
        assert time.monotonic() < deadline, "the replica that is not ready kept receiving requests"
        streak = streak + 1 if _post(balancer, body, headers)["replica"] == "ready" else 0
    for _ in range(10):  # round robin over two healthy replicas would alternate
        answer = _post(balancer, body, headers)
        assert answer["replica"] == "ready"
        assert answer["body"].encode() == body
        assert (answer["signature"], answer["timestamp"]) == ("v0=0123456789abcdef", "1700000000")


def test_health_endpoint_and_private_metrics(balancer: str) -> None:
    assert _status(f"{balancer}/lb-health") == (200, b"ok")
    status, _ = _status(f"{balancer}/metrics")
    assert status == 404, "replica metrics must not be reachable through the public port"
