"""Choosing the chat generator: the bundled model in-process, or an OpenAI-compatible server.

Both kinds answer the same `run(messages, streaming_callback, generation_kwargs)` call and expose the same
adapter calls (`load_adapter`, `activate_adapter`, `active_adapter`), so the bot hot-swaps a newly trained
LoRA adapter the same way whether it runs on a laptop or against a GPU server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrieval.generation.bundled_models import BUNDLED_MODELS
from retrieval.generation.checkpoint import ensure_checkpoint
from retrieval.generation.local import LocalChatGenerator
from retrieval.generation.served import DEFAULT_SERVED_MODEL, ServedChatGenerator, with_v1


def make_chat_generator(
    spec: str,
    *,
    model_cache_dir: Path,
    model_name: str | None = None,
    api_key: str | None = None,
    max_new_tokens: int = 256,
    **kwargs: Any,
) -> LocalChatGenerator | ServedChatGenerator:
    """Builds the generator a settings value names.

    :param spec: `""` or `"local"`: the default bundled model, converted once under `model_cache_dir`; the
        name of a bundled model (`retrieval.generation.bundled_models`, e.g. `gemma3-270m`): that one; a folder: a
        transformers checkpoint there; `http(s)://host:port/v1`: an OpenAI-compatible server (a URL without
        a path gets `/v1`).
    :param model_name: the base model's name on the server (ignored for local models).
    :param kwargs: passed on to the generator's constructor (for example `max_prompt_tokens`,
        `torch_threads` locally, `timeout` for a server).
    """
    spec = (spec or "").strip()
    if spec.startswith(("http://", "https://")):
        return ServedChatGenerator(
            api_base_url=with_v1(spec),
            model=model_name or DEFAULT_SERVED_MODEL,
            api_key=api_key,
            max_new_tokens=max_new_tokens,
            **kwargs,
        )
    if spec in ("", "local") or spec in BUNDLED_MODELS:
        model_path = ensure_checkpoint(Path(model_cache_dir), spec)
    elif Path(spec).expanduser().is_dir():
        model_path = Path(spec).expanduser()
    else:
        raise ValueError(
            f"unknown generator {spec!r}: use 'local' (or {', '.join(repr(name) for name in BUNDLED_MODELS)}), "
            "a checkpoint folder, or an http(s)://…/v1 server URL"
        )
    return LocalChatGenerator(model_path=model_path, max_new_tokens=max_new_tokens, **kwargs)
