"""Whether an OpenAI-compatible server serves the base model tanya trains adapters for.

An adapter is only worth training, and only safe to load, on the exact base it was trained on. When
answers come from a server (vLLM) and training happens in the worker, two settings name that base — the
worker's checkpoint folder and whatever the server was started with — and nothing but this check says
when they drift apart: vLLM would load a LoRA adapter of the right shapes onto another model of the
same size and answer nonsense, and an adapter of other shapes would fail only after the run's minutes
were spent.

The server says what it serves at ``GET /v1/models``: each entry's ``id`` (``--served-model-name``),
its ``root`` (the ``--model`` path or hub name it loaded) and, for a LoRA adapter, its ``parent``. The
served base matches when its ``root`` is a checkpoint folder this machine can read (a shared ``models``
volume) whose identity (``base_identity``: config and tokenizer digest) equals the base's, or, when the
folder cannot be read here, when its name (the last part of ``root`` or ``id``) is one the base goes
by: its folder's name, a bundled model's name or its hub name.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.generation.base_identity import BaseIdentity, identify_checkpoint


class ServerUnavailableError(OSError):
    """The server did not answer ``/v1/models``: nothing can be said about what it serves."""


class ServedBaseMismatchError(RuntimeError):
    """The server serves another base model than the one adapters are trained for."""

    def __init__(self, message: str, served: list[ServedModel] | None = None) -> None:
        super().__init__(message)
        self.served = served or []  # the base models it does serve, to answer with meanwhile


@dataclass(frozen=True)
class ServedModel:
    """One entry of ``GET /v1/models``."""

    id: str
    root: str | None = None
    parent: str | None = None
    max_model_len: int | None = None

    @property
    def is_adapter(self) -> bool:
        return bool(self.parent)

    def describe(self) -> str:
        return f"{self.id!r} (from {self.root})" if self.root and self.root != self.id else repr(self.id)


@dataclass(frozen=True)
class BaseModel:
    """The base adapters are trained on: its checkpoint folder and the names it goes by."""

    folder: Path
    aliases: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.aliases[0] if self.aliases else self.folder.name

    def names(self) -> set[str]:
        return {_short_name(name) for name in (self.folder.name, *self.aliases) if name}


def fetch_served_models(
    api_base_url: str, *, api_key: str | None = None, timeout: float = 10.0
) -> list[ServedModel]:
    """What the server serves (``GET {api_base_url}/models``); `ServerUnavailableError` if it does not say."""
    url = api_base_url.rstrip("/") + "/models"
    request = urllib.request.Request(url, method="GET")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload: Any = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        raise ServerUnavailableError(f"{url} answered HTTP {error.code}") from error
    except (OSError, ValueError) as error:
        raise ServerUnavailableError(f"{url} did not answer ({error})") from error
    entries = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        raise ServerUnavailableError(f"{url} answered without a model list")
    return [
        ServedModel(
            id=str(entry.get("id")),
            root=entry.get("root"),
            parent=entry.get("parent"),
            max_model_len=entry.get("max_model_len"),
        )
        for entry in entries
        if isinstance(entry, dict) and entry.get("id")
    ]


def match_served_base(
    served: Iterable[ServedModel],
    base: BaseModel,
    *,
    requested: str | None = None,
    identity: BaseIdentity | None = None,
) -> ServedModel:
    """The served entry that is `base`; `ServedBaseMismatchError` saying what differs when none is.

    :param requested: the model name answers are asked of (``TANYA_GENERATOR_MODEL``); when given, that
        entry must be the base. None: whichever served base model is `base`.
    :param identity: `base`'s identity, computed when needed and not given.
    """
    bases = [model for model in served if not model.is_adapter]
    if not bases:
        raise ServedBaseMismatchError("the server lists no base model at /v1/models")
    if requested is not None:
        chosen = [model for model in bases if model.id == requested]
        if not chosen:
            listed = ", ".join(model.describe() for model in bases)
            raise ServedBaseMismatchError(
                f"the server does not serve {requested!r} (TANYA_GENERATOR_MODEL); it serves {listed}", bases
            )
        bases = chosen
    reasons = []
    for model in bases:
        reason = _difference(model, base, identity)
        if reason is None:
            return model
        reasons.append(reason)
    raise ServedBaseMismatchError(
        f"the server serves {', '.join(model.describe() for model in bases)}, but adapters are trained for "
        f"{base.label} ({base.folder}): {'; '.join(reasons)}. Serve that checkpoint, or set "
        "TANYA_BASE_MODEL to the one the server serves",
        bases,
    )


def _difference(model: ServedModel, base: BaseModel, identity: BaseIdentity | None) -> str | None:
    """Why `model` is not `base`, or None when it is."""
    root = Path(model.root) if model.root else None
    if root is not None and root.is_absolute() and (root / "config.json").is_file():
        try:
            served = identify_checkpoint(root)
            ours = identity or identify_checkpoint(base.folder)
        except (OSError, ValueError) as error:
            return f"its checkpoint {root} could not be compared ({error})"
        if served.digest == ours.digest:
            return None
        return f"its checkpoint {served.short} differs from {ours.short} in config or tokenizer"
    served_names = {_short_name(name) for name in (model.root, model.id) if name}
    if served_names & base.names():
        return None
    return (
        f"its name ({', '.join(sorted(served_names))}) is none of the base's "
        f"({', '.join(sorted(base.names()))})"
    )


def _short_name(name: str) -> str:
    """'Qwen/Qwen3-8B', '/models/Qwen3-8B/' and 'qwen3-8b' all become 'qwen3-8b'."""
    return name.rstrip("/").rsplit("/", 1)[-1].strip().lower()
