"""A stand-in for a vLLM server on 127.0.0.1: chat completions (plain and SSE) and runtime LoRA loading.

It behaves as vLLM does where tanya depends on it: ``/v1/models`` lists the base (with the ``root`` it
was started from) and the loaded adapters; loading a name it already has answers 400 "has already
been loaded", unloading a name it lacks answers 404, and a chat request for a model it does not serve
answers 404. Every request is recorded, so tests can assert which model each answer was asked of.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

BASE_MODEL = "base-model"
# What the stand-in says it was started with (`vllm serve <root> --served-model-name base-model`): the
# hub name of tanya's default base model, so that a bot on the defaults finds its base served.
BASE_ROOT = "google/gemma-3-270m"


@dataclass
class FakeVllm:
    loaded: dict[str, str] = field(default_factory=dict)  # adapter name → path it was loaded from
    refuse: set[str] = field(default_factory=set)  # adapter names whose loading fails
    # Chat requests whose last message contains one of these are refused (400), as for a bad request.
    refuse_questions: set[str] = field(default_factory=set)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # Set by a test to hold streamed answers mid-way; the server waits for `release` before finishing.
    hold: threading.Event | None = None
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""
    root: str = BASE_ROOT  # the served base's `root` at /v1/models
    models_status: int = 200  # set to 503 to answer /v1/models as a server still starting
    max_model_len: int = 4096  # the served context, as /v1/models reports it

    def models(self) -> dict[str, Any]:
        """``GET /v1/models`` as vLLM answers it: the base, then each loaded adapter with its parent."""
        context = self.max_model_len
        base = {
            "id": BASE_MODEL,
            "object": "model",
            "root": self.root,
            "parent": None,
            "max_model_len": context,
        }
        adapters = [
            {"id": name, "object": "model", "root": path, "parent": BASE_MODEL, "max_model_len": context}
            for name, path in self.loaded.items()
        ]
        return {"object": "list", "data": [base, *adapters]}

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [body for seen, body in self.requests if seen == path]

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    @staticmethod
    def answer_for(model: str) -> str:
        return f"Answer from {model}."


def _handler(fake: FakeVllm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            fake.requests.append((self.path, {}))
            if self.path == "/v1/models" and fake.models_status == 200:
                self._json(200, fake.models())
            elif self.path == "/v1/models":
                self._json(fake.models_status, _error("the server is starting", fake.models_status))
            else:
                self._json(404, _error("not found", 404))

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            fake.requests.append((self.path, body))
            if self.path == "/v1/load_lora_adapter":
                name = body["lora_name"]
                if name in fake.refuse:
                    self._json(
                        400, _error(f"Loading lora {name} failed: No adapter found for {body['lora_path']}")
                    )
                elif name in fake.loaded:
                    self._json(400, _error(f"The lora adapter '{name}' has already been loaded."))
                else:
                    fake.loaded[name] = body["lora_path"]
                    self._text(200, f"Success: LoRA adapter '{name}' added successfully.")
            elif self.path == "/v1/unload_lora_adapter":
                if fake.loaded.pop(body["lora_name"], None) is None:
                    self._json(404, _error(f"The lora adapter '{body['lora_name']}' cannot be found.", 404))
                else:
                    self._text(200, "Success")
            elif self.path == "/v1/chat/completions":
                model = body["model"]
                last = str((body.get("messages") or [{}])[-1].get("content", ""))
                if model != BASE_MODEL and model not in fake.loaded:
                    self._json(404, _error(f"The model `{model}` does not exist.", 404))
                elif any(needle in last for needle in fake.refuse_questions):
                    self._json(400, _error("This request could not be served."))
                else:
                    self._chat(model, bool(body.get("stream")))
            else:
                self._json(404, _error("not found", 404))

        def _chat(self, model: str, stream: bool) -> None:
            text = fake.answer_for(model)
            base = {"id": "chatcmpl-1", "created": int(time.time()), "model": model}
            if not stream:
                message = {"role": "assistant", "content": text}
                self._json(
                    200,
                    {
                        **base,
                        "object": "chat.completion",
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
                    },
                )
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            words = text.split(" ")
            for i, word in enumerate(words):
                piece = word if i == len(words) - 1 else word + " "
                delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
                chunk = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [
                        {"index": 0, "delta": delta, "finish_reason": "stop" if i == len(words) - 1 else None}
                    ],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                if i == 0 and fake.hold is not None:
                    fake.hold.set()
                    fake.release.wait(30)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            self._send(status, "application/json", json.dumps(payload).encode())

        def _text(self, status: int, text: str) -> None:
            self._send(status, "text/plain", text.encode())

        def _send(self, status: int, content_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _error(message: str, code: int = 400) -> dict[str, Any]:
    kind = "NotFoundError" if code == 404 else "BadRequestError"
    return {"object": "error", "message": message, "type": kind, "param": None, "code": code}


@pytest.fixture
def vllm() -> Iterator[FakeVllm]:
    fake = FakeVllm()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()
