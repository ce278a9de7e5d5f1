"""A local stand-in for Slack's Socket Mode WebSocket endpoint (the ``websockets`` package, in a thread).

It greets each connection with ``hello`` like Slack, pushes envelopes on request and records what the
client sends back, which is how acknowledgements (``{"envelope_id": …}``) are checked.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from websockets.asyncio.server import ServerConnection, serve


class SocketModeServer:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.connections: list[ServerConnection] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="socket-mode-server", daemon=True)
        self._server: Any = None
        self.port = 0

    def __enter__(self) -> SocketModeServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Socket Mode test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link/?ticket=test-ticket&app_id=ATANYA"

    def acked(self) -> list[str]:
        with self._lock:
            return [message["envelope_id"] for message in self.received if "envelope_id" in message]

    def connected(self) -> bool:
        with self._lock:
            return bool(self.connections)

    def send(self, *envelopes: dict[str, Any]) -> None:
        """Push envelopes to the newest connection back to back, without waiting for any ack."""

        async def push() -> None:
            with self._lock:
                connection = self.connections[-1]
            await asyncio.gather(*(connection.send(json.dumps(envelope)) for envelope in envelopes))

        asyncio.run_coroutine_threadsafe(push(), self._loop).result(10)

    # -- internals --------------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, connection: ServerConnection) -> None:
        with self._lock:
            self.connections.append(connection)
        await connection.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "test", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": "ATANYA"},
                }
            )
        )
        async for raw in connection:
            message = json.loads(raw)
            with self._lock:
                self.received.append(message)


def events_api_envelope(body: dict[str, Any], *, envelope_id: str, retry_attempt: int = 0) -> dict[str, Any]:
    return {
        "envelope_id": envelope_id,
        "payload": body,
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": "",
    }
