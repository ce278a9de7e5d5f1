"""The OpenAI-compatible path, against a small stand-in for a vLLM server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from haystack.dataclasses import ChatMessage, StreamingChunk

from retrieval.generation.adapters import AdapterLoadError
from retrieval.generation.bundled_models import DEFAULT_MODEL
from retrieval.generation.factory import make_chat_generator
from retrieval.generation.local import LocalChatGenerator
from retrieval.generation.served import DEFAULT_SERVED_MODEL, ServedChatGenerator

MESSAGES = [ChatMessage.from_system("Be brief."), ChatMessage.from_user("Where is the VPN guide?")]


class FakeServer:
    """Answers /v1/chat/completions (plain and SSE) and vLLM's runtime LoRA endpoints, recording requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any], str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                server.requests.append((self.path, body, self.headers.get("Authorization", "")))
                if self.path == "/v1/chat/completions":
                    server.chat(self, body)
                elif self.path == "/v1/load_lora_adapter" and body.get("lora_name") == "bad":
                    self.reply(
                        400, "text/plain", b"The lora adapter 'bad' could not be loaded: no such path\nmore"
                    )
                elif self.path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter"):
                    self.reply(200, "text/plain", b"Success")
                else:
                    self.reply(404, "application/json", b'{"error": "not found"}')

            def reply(self, status: int, content_type: str, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def answer_for(model: str) -> str:
        return f"The guide is in docs/vpn.html, says {model} [1]."

    def chat(self, handler: Any, body: dict[str, Any]) -> None:
        text = self.answer_for(body["model"])
        usage = {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
        base = {"id": "chatcmpl-1", "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            payload = {
                **base,
                "object": "chat.completion",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": usage,
            }
            handler.reply(200, "application/json", json.dumps(payload).encode())
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        words = text.split(" ")
        pieces = [word + (" " if i < len(words) - 1 else "") for i, word in enumerate(words)]
        for i, piece in enumerate(pieces):
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            finish = "stop" if i == len(pieces) - 1 else None
            chunk = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            handler.wfile.flush()
        handler.wfile.write(b"data: [DONE]\n\n")
        handler.wfile.flush()
        handler.close_connection = True


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.thread.start()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


def _served(server: FakeServer, **kwargs: Any) -> ServedChatGenerator:
    generator = make_chat_generator(
        f"{server.url}/v1",
        model_cache_dir=Path("unused"),
        model_name="smollm2",
        api_key="s3cret",
        max_retries=0,
        timeout=10,
        **kwargs,
    )
    assert isinstance(generator, ServedChatGenerator)
    generator.warm_up()
    return generator


def test_plain_completion_carries_model_usage_and_adapter(server: FakeServer) -> None:
    reply = _served(server, max_new_tokens=64).run(MESSAGES)["replies"][0]
    assert reply.text == FakeServer.answer_for("smollm2")
    assert reply.meta["adapter"] is None
    assert reply.meta["model"] == "smollm2"
    assert reply.meta["finish_reason"] == "stop"
    assert reply.meta["usage"]["completion_tokens"] == 9
    path, body, auth = server.requests[-1]
    assert path == "/v1/chat/completions" and auth == "Bearer s3cret"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is the VPN guide?"},
    ]
    assert (body["max_tokens"], body["temperature"], body["stream"]) == (64, 0.0, False)


def test_streaming_over_server_sent_events(server: FakeServer) -> None:
    chunks: list[StreamingChunk] = []
    reply = _served(server).run(MESSAGES, streaming_callback=chunks.append)["replies"][0]
    assert reply.text == FakeServer.answer_for("smollm2")
    assert "".join(chunk.content for chunk in chunks) == reply.text
    assert len([chunk for chunk in chunks if chunk.content]) == len(reply.text.split(" "))
    assert server.requests[-1][1]["stream"] is True


def test_an_adapter_is_selected_by_model_name(server: FakeServer) -> None:
    generator = _served(server)
    generator.load_adapter("v7", Path("/srv/adapters/v7"))
    assert server.requests[-1][:2] == (
        "/v1/load_lora_adapter",
        {"lora_name": "v7", "lora_path": "/srv/adapters/v7"},
    )
    generator.activate_adapter("v7")
    reply = generator.run(MESSAGES, generation_kwargs={"max_new_tokens": 5})["replies"][0]
    assert (reply.text, reply.meta["adapter"]) == (FakeServer.answer_for("v7"), "v7")
    assert (server.requests[-1][1]["model"], server.requests[-1][1]["max_tokens"]) == ("v7", 5)
    generator.activate_adapter(None)
    assert generator.run(MESSAGES)["replies"][0].meta["adapter"] is None
    assert server.requests[-1][1]["model"] == "smollm2"
    generator.unload_adapter("v7")
    assert server.requests[-1][:2] == ("/v1/unload_lora_adapter", {"lora_name": "v7"})


def test_a_refused_adapter_raises_with_the_server_reason(server: FakeServer) -> None:
    generator = _served(server)
    with pytest.raises(
        AdapterLoadError, match=r"answered 400: The lora adapter 'bad' could not be loaded"
    ) as caught:
        generator.load_adapter("bad", Path("/nowhere"))
    assert "\n" not in str(caught.value)
    assert generator.active_adapter is None


def test_an_unreachable_server_is_reported_not_hung() -> None:
    generator = ServedChatGenerator(api_base_url="http://127.0.0.1:9/v1", timeout=2)
    with pytest.raises(AdapterLoadError, match="did not answer"):
        generator.load_adapter("v1", Path("/x"))


def test_factory_fills_in_v1_and_defaults_and_keeps_the_key_out_of_serialization(tmp_path: Path) -> None:
    generator = make_chat_generator("http://vllm:8000", model_cache_dir=tmp_path, api_key="s3cret")
    assert isinstance(generator, ServedChatGenerator)
    assert (generator.api_base_url, generator.model) == ("http://vllm:8000/v1", DEFAULT_SERVED_MODEL)
    data = generator.to_dict()
    assert "s3cret" not in json.dumps(data)
    assert ServedChatGenerator.from_dict(data).to_dict() == data
    with pytest.raises(ValueError, match="unknown generator"):
        make_chat_generator("ftp://models", model_cache_dir=tmp_path)


@pytest.mark.model
def test_factory_builds_the_local_generator_on_the_converted_checkpoint(checkpoint_dir: Path) -> None:
    default = checkpoint_dir.parent / DEFAULT_MODEL.name  # Gemma; checkpoint_dir is the tests' SmolLM2
    for spec, expected in (
        ("", default),
        ("local", default),
        (checkpoint_dir.name, checkpoint_dir),
        (str(checkpoint_dir), checkpoint_dir),
    ):
        generator = make_chat_generator(spec, model_cache_dir=checkpoint_dir.parent, max_new_tokens=7)
        assert isinstance(generator, LocalChatGenerator)
        assert (generator.model_path, generator.max_new_tokens) == (expected, 7), spec
