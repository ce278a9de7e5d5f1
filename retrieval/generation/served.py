"""Answers from an OpenAI-compatible server such as vLLM, with its runtime LoRA adapters.

On such a server a LoRA adapter is served as a model of its own, so selecting an adapter means sending
requests under the adapter's name instead of the base model's; `ServedChatGenerator` does that, behind
the same `run` and adapter calls as the in-process `LocalChatGenerator`.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from haystack import component, default_from_dict, default_to_dict
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.dataclasses import ChatMessage, StreamingChunk
from haystack.utils import Secret
from openai import NotFoundError

from retrieval.generation.adapters import AdapterLoadError

log = logging.getLogger(__name__)

# The name a server serving the bundled default model usually gives it; asked for when the server
# cannot be asked which base it serves and TANYA_GENERATOR_MODEL names none.
DEFAULT_SERVED_MODEL = "google/gemma-3-270m"
# Sent with every request (vLLM's `chat_template_kwargs`): answers, like training rows, are rendered with
# thinking turned off (Qwen3 writes a <think> block otherwise); templates without the switch ignore it.
CHAT_TEMPLATE_KWARGS: dict[str, Any] = {"enable_thinking": False}


@component
class ServedChatGenerator:
    """Chat replies from an OpenAI-compatible server; the active LoRA adapter is the model name requested."""

    def __init__(
        self,
        *,
        api_base_url: str,
        model: str = DEFAULT_SERVED_MODEL,
        api_key: str | None = None,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        timeout: float | None = None,
        max_retries: int | None = None,
        active_adapter: str | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        max_prompt_tokens: int | None = None,
        tokenizer_path: str | None = None,
    ) -> None:
        """
        :param api_base_url: the server's base URL, including `/v1`.
        :param model: the base model's name on the server.
        :param api_key: sent as a bearer token; servers without authentication ignore it. Not serialized.
        :param active_adapter: the served LoRA adapter to request; `None` requests the base model.
        :param chat_template_kwargs: variables for the server's chat template; `None`: thinking off.
        :param max_prompt_tokens: prompt budget (the served context minus the answer's tokens); a longer
            chat is shortened as in-process (``token_budget``) instead of being refused by the server.
            Needs `tokenizer_path`, the base model's tokenizer, to count.
        """
        self.api_base_url = api_base_url.rstrip("/")
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.timeout = timeout
        self.max_retries = max_retries
        self._api_key = api_key or "unused"
        self._active = active_adapter
        self.max_prompt_tokens = max_prompt_tokens
        self.tokenizer_path = tokenizer_path
        self._tokenizer: Any = None
        self.chat_template_kwargs = dict(
            CHAT_TEMPLATE_KWARGS if chat_template_kwargs is None else chat_template_kwargs
        )
        self._generators: dict[str, OpenAIChatGenerator] = {}
        self._lock = threading.Lock()
        self._paths: dict[str, str] = {}  # adapter → path on the server, to load it again after a restart
        self._in_flight: dict[str, int] = {}  # adapter → requests of this process still generating with it

    def to_dict(self) -> dict[str, Any]:
        """Serializes the component, without the API key."""
        return default_to_dict(
            self,
            api_base_url=self.api_base_url,
            model=self.model,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            timeout=self.timeout,
            max_retries=self.max_retries,
            active_adapter=self.active_adapter,
            chat_template_kwargs=self.chat_template_kwargs,
            max_prompt_tokens=self.max_prompt_tokens,
            tokenizer_path=self.tokenizer_path,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServedChatGenerator:
        """Deserializes the component."""
        return default_from_dict(cls, data)

    def warm_up(self) -> None:
        """Creates the client for the base model; nothing is sent to the server."""
        self._generator_for(self.model)

    @property
    def active_adapter(self) -> str | None:
        """The adapter the next request will name (`None`: the base model)."""
        with self._lock:
            return self._active

    def activate_adapter(self, name: str | None) -> None:
        """Requests `name` from the next request on; the server must already serve it."""
        with self._lock:
            self._active = name

    @property
    def busy_adapters(self) -> set[str]:
        """Adapters that requests of this process are generating with right now (not safe to unload)."""
        with self._lock:
            return {name for name, count in self._in_flight.items() if count > 0}

    def load_adapter(self, name: str, path: Path) -> None:
        """Asks the server to load an adapter at runtime (vLLM's `/v1/load_lora_adapter`).

        `path` is read by the server, so it must be a path on the server's side (a shared volume). vLLM only
        offers this endpoint when started with `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`; otherwise list the
        adapters in `--lora-modules` and only call `activate_adapter`.

        An adapter the server already has under this name counts as loaded: adapter names are unique per
        trained version, and several bot replicas share one server, so another may have loaded it first.
        """
        self._post(
            "load_lora_adapter",
            {"lora_name": name, "lora_path": str(path)},
            name,
            done_if=lambda status, text: status == 400 and "already been loaded" in text,
        )
        with self._lock:
            self._paths[name] = str(path)

    def unload_adapter(self, name: str) -> None:
        """Asks the server to drop an adapter (vLLM's `/v1/unload_lora_adapter`); one it lacks counts as dropped."""
        self._post("unload_lora_adapter", {"lora_name": name}, name, done_if=lambda status, _: status == 404)
        with self._lock:
            self._paths.pop(name, None)

    @component.output_types(replies=list[ChatMessage])
    def run(
        self,
        messages: list[ChatMessage],
        streaming_callback: Callable[[StreamingChunk], None] | None = None,
        generation_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, list[ChatMessage]]:
        """Sends the chat to the server under the active adapter's name (or the base model's)."""
        with self._lock:
            adapter = self._active
            if adapter is not None:
                self._in_flight[adapter] = self._in_flight.get(adapter, 0) + 1
        kwargs = dict(generation_kwargs or {})
        if "max_new_tokens" in kwargs:
            kwargs["max_tokens"] = kwargs.pop("max_new_tokens")
        messages, truncated = self._fit(messages)
        try:
            result = self._generate(adapter, messages, streaming_callback, kwargs or None)
        finally:
            if adapter is not None:
                with self._lock:
                    self._in_flight[adapter] -= 1
        replies = [
            ChatMessage.from_assistant(
                reply.text or "", meta={**reply.meta, "adapter": adapter, "prompt_truncated": truncated}
            )
            for reply in result["replies"]
        ]
        return {"replies": replies}

    def _fit(self, messages: list[ChatMessage]) -> tuple[list[ChatMessage], bool]:
        """The chat within `max_prompt_tokens`, counted with the base model's tokenizer; as it is without one."""
        if not self.max_prompt_tokens or not self.tokenizer_path:
            return messages, False
        from retrieval.generation.token_budget import fit_messages  # heavy

        with self._lock:
            if self._tokenizer is None:
                from transformers import AutoTokenizer  # heavy

                self._tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_path)
        chat = [{"role": message.role.value, "content": message.text or ""} for message in messages]
        fitted, _, truncated = fit_messages(self._tokenizer, chat, self.max_prompt_tokens)
        if not truncated:
            return messages, False
        build = {"system": ChatMessage.from_system, "user": ChatMessage.from_user}
        return [build.get(m["role"], ChatMessage.from_assistant)(m["content"]) for m in fitted], True

    def _generate(
        self,
        adapter: str | None,
        messages: list[ChatMessage],
        streaming_callback: Callable[[StreamingChunk], None] | None,
        kwargs: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """One request; an adapter the server has lost (it restarted) is loaded again, once."""
        generator = self._generator_for(adapter or self.model)
        try:
            return generator.run(
                messages=messages, streaming_callback=streaming_callback, generation_kwargs=kwargs
            )
        except NotFoundError:
            with self._lock:
                path = self._paths.get(adapter) if adapter else None
            if path is None:
                raise
            log.warning("the server no longer has adapter %s (restarted?); loading it again", adapter)
            self.load_adapter(adapter, Path(path))  # type: ignore[arg-type]
            return generator.run(
                messages=messages, streaming_callback=streaming_callback, generation_kwargs=kwargs
            )

    def _generator_for(self, model: str) -> OpenAIChatGenerator:
        with self._lock:
            generator = self._generators.get(model)
            if generator is None:
                generator = OpenAIChatGenerator(
                    api_key=Secret.from_token(self._api_key),
                    model=model,
                    api_base_url=self.api_base_url,
                    generation_kwargs={
                        "max_tokens": self.max_new_tokens,
                        "temperature": self.temperature,
                        "extra_body": {"chat_template_kwargs": self.chat_template_kwargs},
                    },
                    timeout=self.timeout,
                    max_retries=self.max_retries,
                )
                generator.warm_up()
                self._generators[model] = generator
            return generator

    def _post(
        self,
        endpoint: str,
        payload: dict[str, str],
        name: str,
        *,
        done_if: Callable[[int, str], bool] = lambda status, text: False,
    ) -> None:
        """POSTs to a runtime-LoRA endpoint; an error answer for which `done_if` holds counts as success."""
        request = urllib.request.Request(
            f"{self.api_base_url}/{endpoint}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._api_key}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout or 60) as response:
                response.read()
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", "replace").strip()
            if done_if(error.code, text):
                return
            body = text.splitlines()
            reason = body[0][:300] if body else error.reason
            raise AdapterLoadError(f"adapter {name!r}: the server answered {error.code}: {reason}") from error
        except (urllib.error.URLError, OSError) as error:
            raise AdapterLoadError(
                f"adapter {name!r}: the server at {self.api_base_url} did not answer"
            ) from error


def with_v1(url: str) -> str:
    """The server's OpenAI API root: a URL without a path gets `/v1`."""
    parts = urllib.parse.urlsplit(url.rstrip("/"))
    if parts.path in ("", "/"):
        return urllib.parse.urlunsplit(parts._replace(path="/v1"))
    return url.rstrip("/")
