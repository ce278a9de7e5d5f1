#!/usr/bin/env python3
"""Health check of a tanya container, installed in the image as ``tanya-healthcheck``.

One image runs several commands, and "healthy" means something different for each:

* ``tanya serve`` in HTTP mode: ``GET /readyz`` on its port answers 200 (models loaded, database,
  document store and generator answering).
* ``tanya serve`` in Socket Mode: the same ``/readyz`` on ``TANYA_METRICS_PORT`` when that is set;
  otherwise nothing listens and there is nothing more to check than the process being up.
* ``tanya worker`` with ``TANYA_WORKER_METRICS_PORT`` set: its ``/metrics`` endpoint answers.
* anything else (a one-off ``tanya ingest``, ``tanya db upgrade``): healthy while it runs.

The command is read from /proc/1/cmdline: the container's main process, or ``docker-init`` when compose
runs it with ``init: true``, whose command line carries tanya's after its own. Standard library only: it
runs every few seconds and must not pay for importing tanya.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping


def container_command(path: str = "/proc/1/cmdline") -> list[str]:
    """tanya's arguments after the program name, e.g. ``["serve", "--port", "3000"]``; [] if not tanya."""
    try:
        with open(path, "rb") as handle:
            argv = [part.decode(errors="replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []
    for index, part in enumerate(argv):
        if os.path.basename(part) == "tanya":
            return argv[index + 1 :]
    return []


def option(args: list[str], name: str, default: str) -> str:
    """The value of ``--name VALUE`` or ``--name=VALUE``."""
    for index, part in enumerate(args):
        if part == name and index + 1 < len(args):
            return args[index + 1]
        if part.startswith(name + "="):
            return part.split("=", 1)[1]
    return default


def _port(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value if value and value != "0" else None  # 0 means "no metrics server" in tanya's settings


def probe_url(args: list[str], environ: Mapping[str, str]) -> str | None:
    """The URL that must answer 200 for this container to be healthy; None when there is none."""
    command = next((part for part in args if not part.startswith("-")), "")
    if command == "serve":
        if not environ.get("SLACK_APP_TOKEN"):
            return f"http://127.0.0.1:{option(args, '--port', '3000')}/readyz"
        port = _port(environ, "TANYA_METRICS_PORT")
        return f"http://127.0.0.1:{port}/readyz" if port else None
    if command == "worker":
        port = _port(environ, "TANYA_WORKER_METRICS_PORT")
        return f"http://127.0.0.1:{port}/metrics" if port else None
    return None


def main(cmdline: str = "/proc/1/cmdline") -> int:
    url = probe_url(container_command(cmdline), os.environ)
    if url is None:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read(64 * 1024)
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:
        # /readyz says which part does not answer; show it (docker inspect and `docker compose exec` do).
        detail = exc.read(2000).decode(errors="replace").strip()
        print(f"{url}: HTTP {exc.code} {detail}", file=sys.stderr)
        return 1
    except OSError as exc:  # refused, timed out, no such host
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
