"""A stand-in for the Slack Web API on 127.0.0.1, built on the standard library only.

It records every call, keeps just enough state to answer like Slack (messages with their ``ts``,
threads, reactions, published views, uploaded files) and can be told to fail the next calls to a method with a 429
(``Retry-After``) or a 5xx, which is how the bot's retry behaviour is tested without Slack; with
``after_store`` the call does its work first and then fails, as Slack sometimes does (the message is
posted, the client sees a 500).
``response_url`` posts (slash commands, buttons) are served and recorded here too.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

BOT_TOKEN = "xoxb-emulated-bot-token"
APP_TOKEN = "xapp-1-emulated-app-token"
SIGNING_SECRET = "emulated-signing-secret"
TEAM_ID = "T0TANYA"
BOT_USER_ID = "UTANYABOT"
BOT_ID = "BTANYABOT"
APP_ID = "ATANYA"

# Methods that authenticate with the app-level token instead of the bot token.
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    status: int = 200


@dataclass
class Failure:
    status: int
    retry_after: int | None = None
    error: str | None = None
    after_store: bool = False


class SlackEmulator:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.socket_url: str | None = None
        self.uploads: dict[str, bytes] = {}
        self._failures: dict[str, deque[Failure]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                emulator._handle(self)

            def do_POST(self) -> None:
                emulator._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="slack-emulator", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> SlackEmulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, name: str) -> str:
        return f"{self.base_url}/response/{name}"

    # -- test controls --------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        status: int = 429,
        *,
        times: int = 1,
        retry_after: int | None = None,
        after_store: bool = False,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail with ``status`` (``after_store``: once done)."""
        with self._lock:
            for _ in range(times):
                self._failures[method].append(
                    Failure(status=status, retry_after=retry_after, after_store=after_store)
                )

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def responses(self, name: str | None = None) -> list[Call]:
        """Posts to response URLs (all, or the one called ``name``)."""
        with self._lock:
            return [
                call
                for call in self.calls
                if call.method.startswith("response:") and (name is None or call.method == f"response:{name}")
            ]

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The bot's messages in a thread, oldest first, as they look now (after updates)."""
        with self._lock:
            found = [
                dict(message)
                for (chan, _), message in self.messages.items()
                if chan == channel and message.get("thread_ts") == thread_ts
            ]
        return sorted(found, key=lambda message: float(message["ts"]))

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self._lock:
            found = self.messages.get((channel, ts))
            return dict(found) if found else None

    def new_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.{next(self._ts):06d}"

    # -- HTTP ----------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        raw_bytes = request.rfile.read(length) if length else b""
        raw = "" if parts.path.startswith("/upload/") else raw_bytes.decode("utf-8")
        args: dict[str, Any] = dict(parse_qsl(parts.query))
        if raw:
            if (request.headers.get("Content-Type") or "").startswith("application/json"):
                args.update(json.loads(raw))
            else:
                args.update(dict(parse_qsl(raw, keep_blank_values=True)))
        for key in ("blocks", "view", "attachments"):
            if isinstance(args.get(key), str) and args[key][:1] in "[{":
                args[key] = json.loads(args[key])
        if parts.path.startswith("/upload/"):
            # files.uploadV2's second step: the bytes, posted to the URL the first step handed out.
            with self._lock:
                self.uploads[parts.path.rsplit("/", 1)[1]] = raw_bytes
            self._send(request, 200, f"OK - {len(raw_bytes)}", content_type="text/plain")
            return
        if parts.path.startswith("/response/"):
            self._record(Call(method="response:" + parts.path.rsplit("/", 1)[1], args=args))
            self._send(request, 200, "ok", content_type="text/plain")
            return
        method = parts.path.removeprefix("/api/")
        with self._lock:
            failure = self._failures[method].popleft() if self._failures[method] else None
        if failure is not None and failure.after_store:
            handler = getattr(self, "_api_" + method.replace(".", "_"), None)
            if handler is not None:
                handler(args)
        if failure is not None:
            self._record(Call(method=method, args=args, status=failure.status))
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            body = {"ok": False, "error": "ratelimited" if failure.status == 429 else "fatal_error"}
            self._send(request, failure.status, json.dumps(body), headers=headers)
            return
        self._record(Call(method=method, args=args))
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ").strip() or args.get(
            "token"
        )
        expected = APP_TOKEN if method in APP_TOKEN_METHODS else BOT_TOKEN
        if token != expected:
            self._send(request, 200, json.dumps({"ok": False, "error": "invalid_auth"}))
            return
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        result = handler(args) if handler else {"ok": False, "error": "unknown_method"}
        self._send(request, 200, json.dumps(result))

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler,
        status: int,
        body: str,
        *,
        content_type: str = "application/json; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = body.encode("utf-8")
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(payload)

    # -- Web API methods ---------------------------------------------------------------------------

    def _api_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://tanya-test.slack.com/",
            "team": "tanya test",
            "user": "tanya",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _api_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = self.new_ts()
        message = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "channel": channel,
            "ts": ts,
            "text": args.get("text", ""),
            "blocks": args.get("blocks") or [],
            "updates": 0,
        }
        metadata = args.get("metadata")
        if isinstance(metadata, str) and metadata[:1] == "{":
            metadata = json.loads(metadata)
        if isinstance(metadata, dict):
            message["metadata"] = metadata
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        with self._lock:
            self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": dict(message)}

    def _api_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (args.get("channel"), args.get("ts"))
        with self._lock:
            message = self.messages.get(key)  # type: ignore[arg-type]
            if message is None:
                return {"ok": False, "error": "message_not_found"}
            message["text"] = args.get("text", message["text"])
            message["blocks"] = args.get("blocks") or []
            message["updates"] += 1
            return {
                "ok": True,
                "channel": key[0],
                "ts": key[1],
                "text": message["text"],
                "message": dict(message),
            }

    def _api_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("user") or not args.get("channel"):
            return {"ok": False, "error": "user_not_in_channel"}
        return {"ok": True, "message_ts": self.new_ts()}

    def _api_reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            message = self.messages.get((args.get("channel"), args.get("timestamp")))  # type: ignore[arg-type]
            if message is None:
                return {"ok": False, "error": "message_not_found"}
            message.setdefault("reactions", []).append({"name": args.get("name"), "users": [BOT_USER_ID]})
        return {"ok": True}

    def _api_reactions_get(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self.message(args.get("channel", ""), args.get("timestamp", ""))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "type": "message", "channel": args["channel"], "message": message}

    def _api_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel", ""), args.get("ts", "")
        messages = self.thread(channel, ts)
        if str(args.get("include_all_metadata", "")).lower() not in ("1", "true"):
            for message in messages:
                message.pop("metadata", None)  # as Slack: metadata only when asked for
        return {"ok": True, "messages": messages, "has_more": False}

    def _api_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel", "")
        info = self.channels.get(channel)
        if info is None:
            if not channel:
                return {"ok": False, "error": "channel_not_found"}
            info = {
                "id": channel,
                "is_channel": channel.startswith("C"),
                "is_group": channel.startswith("G"),
                "is_im": channel.startswith("D"),
                "is_mpim": False,
                "is_private": not channel.startswith("C"),
            }
        return {"ok": True, "channel": info}

    def _api_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "view": {"id": "V" + self.new_ts().replace(".", ""), **(args.get("view") or {})}}

    def _api_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        return {"ok": True, "view": {"id": "V" + self.new_ts().replace(".", ""), **(args.get("view") or {})}}

    def _api_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = args.get("user", "")
        found = self.users.get(user, {"is_admin": False, "is_owner": False})
        return {"ok": True, "user": {"id": user, "team_id": TEAM_ID, **found}}

    def _api_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("filename") or not args.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = "F" + self.new_ts().replace(".", "")
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _api_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files")
        files = json.loads(files) if isinstance(files, str) else files or []
        with self._lock:
            missing = [f["id"] for f in files if f["id"] not in self.uploads]
        if missing or not files:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title", "")} for f in files]}

    def _api_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not self.socket_url:
            return {"ok": False, "error": "socket_mode_not_enabled"}
        return {"ok": True, "url": self.socket_url}
