"""deploy/healthcheck.py, the image's HEALTHCHECK: what it probes for each command, and its exit status."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.deploy.helpers import load_healthcheck

health = load_healthcheck()


def write_cmdline(path: Path, *argv: str) -> str:
    path.write_bytes(b"\0".join(part.encode() for part in argv) + b"\0")
    return str(path)


def test_reads_tanyas_arguments_also_behind_docker_init(tmp_path: Path) -> None:
    plain = write_cmdline(tmp_path / "plain", "/usr/local/bin/python3.11", "/usr/local/bin/tanya", "worker")
    assert health.container_command(plain) == ["worker"]
    behind_init = write_cmdline(
        tmp_path / "init", "/sbin/docker-init", "--", "tanya", "serve", "--host", "0.0.0.0", "--port", "3000"
    )
    assert health.container_command(behind_init) == ["serve", "--host", "0.0.0.0", "--port", "3000"]
    other = write_cmdline(tmp_path / "other", "haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg")
    assert health.container_command(other) == []
    assert health.container_command(str(tmp_path / "missing")) == []


@pytest.mark.parametrize(
    ("args", "environ", "url"),
    [
        (["serve", "--host", "0.0.0.0", "--port", "3000"], {}, "http://127.0.0.1:3000/readyz"),
        (["serve", "--port=8123"], {}, "http://127.0.0.1:8123/readyz"),
        (["serve"], {}, "http://127.0.0.1:3000/readyz"),
        # Socket Mode: /readyz only where the separate metrics server was asked for.
        (["serve"], {"SLACK_APP_TOKEN": "xapp-1"}, None),
        (
            ["serve"],
            {"SLACK_APP_TOKEN": "xapp-1", "TANYA_METRICS_PORT": "9090"},
            "http://127.0.0.1:9090/readyz",
        ),
        (["worker"], {"TANYA_WORKER_METRICS_PORT": "9100"}, "http://127.0.0.1:9100/metrics"),
        (["worker"], {"TANYA_WORKER_METRICS_PORT": "0"}, None),
        (["worker", "--once"], {}, None),
        (["db", "upgrade"], {}, None),
        ([], {}, None),
    ],
)
def test_probes_what_the_command_serves(args, environ, url) -> None:
    assert health.probe_url(args, environ) == url


class _Handler(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # stdlib naming
        body = b'{"status": "ok"}' if self.status == 200 else b'{"status": "unavailable"}'
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_exit_status_follows_readyz(tmp_path: Path, server: ThreadingHTTPServer, monkeypatch, capsys) -> None:
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    port = server.server_address[1]
    cmdline = write_cmdline(
        tmp_path / "cmdline", "/sbin/docker-init", "--", "tanya", "serve", "--port", str(port)
    )
    _Handler.status = 200
    assert health.main(cmdline) == 0
    _Handler.status = 503
    assert health.main(cmdline) == 1
    assert '503 {"status": "unavailable"}' in capsys.readouterr().err  # what is missing, for the operator


def test_unhealthy_when_nothing_listens(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmdline = write_cmdline(tmp_path / "cmdline", "tanya", "serve", "--port", str(port))
    assert health.main(cmdline) == 1


def test_one_off_commands_are_healthy(tmp_path: Path) -> None:
    assert health.main(write_cmdline(tmp_path / "cmdline", "tanya", "ingest", "/docs")) == 0
