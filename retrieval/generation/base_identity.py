"""
Which base model an adapter belongs to: a name for people and a digest for the machine.

A LoRA adapter only means something on the exact base it was trained on. Shape checks catch a
different architecture, but not a different model of the same shape (a fine-tune, another release of
the same size, another tokenizer), where an adapter loads and answers nonsense. So each adapter tanya
trains records its base's identity (`tanya_base.json` beside the weights), and loading it onto any
other base is refused with both identities in the message.

The digest covers what decides the meaning of the weights and tokens, and nothing a re-save changes:
the model config without bookkeeping keys, and the tokenizer's vocabulary, special tokens and chat
template.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IDENTITY_FILE = "tanya_base.json"
# Written by whichever library version saved the checkpoint, or naming where it was loaded from.
_BOOKKEEPING = {"_name_or_path", "transformers_version", "torch_dtype", "dtype", "use_cache", "_commit_hash"}


@dataclass(frozen=True)
class BaseIdentity:
    """A base model's name (its folder) and a sha256 over its config and tokenizer."""

    name: str
    digest: str

    @property
    def short(self) -> str:
        return f"{self.name} ({self.digest[:12]})"

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "sha256": self.digest}


def identify_checkpoint(folder: Path, tokenizer: Any | None = None) -> BaseIdentity:
    """The identity of the transformers checkpoint in `folder` (its tokenizer is loaded unless given)."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if tokenizer is None:
        from transformers import AutoTokenizer  # heavy

        tokenizer = AutoTokenizer.from_pretrained(folder)
    digest = hashlib.sha256()
    digest.update(_canonical({k: v for k, v in config.items() if k not in _BOOKKEEPING}))
    digest.update(_canonical(sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])))
    digest.update(_canonical({"special": sorted(map(str, tokenizer.all_special_tokens))}))
    digest.update(_canonical({"template": getattr(tokenizer, "chat_template", None) or ""}))
    return BaseIdentity(name=folder.name, digest=digest.hexdigest())


def write_identity(adapter_folder: Path, identity: BaseIdentity) -> None:
    """Records `identity` in an adapter folder, beside its weights."""
    (Path(adapter_folder) / IDENTITY_FILE).write_text(json.dumps(identity.to_json(), indent=1) + "\n")


def recorded_identity(adapter_folder: Path) -> BaseIdentity | None:
    """The base an adapter folder says it was trained on; None for adapters from before this record."""
    path = Path(adapter_folder) / IDENTITY_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return BaseIdentity(name=str(data["name"]), digest=str(data["sha256"]))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is unreadable: {error}") from error


def mismatch(adapter_folder: Path, base: BaseIdentity) -> str | None:
    """Why the adapter in `adapter_folder` does not belong to `base`, or None when it does (or cannot say)."""
    try:
        recorded = recorded_identity(adapter_folder)
    except ValueError as error:
        return str(error)
    if recorded is None or recorded.digest == base.digest:
        return None
    return f"it was trained on {recorded.short}, and this base is {base.short}; re-train it on this base"


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
