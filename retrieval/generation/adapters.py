"""Checking a LoRA adapter folder before it goes anywhere near a model that is serving answers.

Adapters arrive from a training worker, possibly on another machine, through a shared folder. A folder can
be half-copied, a training run can diverge into NaNs, or an adapter can have been trained on a different
base model. peft reports some of these as warnings and goes on with a silently broken model, so the files
are read and compared with the base model's layers first, and every problem becomes one `AdapterLoadError`
with a one-line reason that an operator can act on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.generation.base_identity import BaseIdentity, mismatch

CONFIG_FILENAME = "adapter_config.json"
WEIGHTS_FILENAME = "adapter_model.safetensors"
_LORA_PARTS = (".lora_A.", ".lora_B.")


class AdapterLoadError(RuntimeError):
    """An adapter folder cannot be used; the message is one line that says why."""


@dataclass(frozen=True)
class AdapterFiles:
    """What a valid adapter folder holds, as far as the generator needs to know."""

    path: Path
    config: dict[str, Any]
    tensor_names: tuple[str, ...]


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _module_path(tensor_name: str) -> tuple[str, str] | None:
    """Split 'base_model.model.<module>.lora_A.weight' into ('<module>', 'lora_A')."""
    for part in _LORA_PARTS:
        if part in tensor_name:
            module, _, _ = tensor_name.partition(part)
            module = module.removeprefix("base_model.model.")
            return module, part.strip(".")
    return None


def _linear_shape(base_model: Any, module_name: str) -> tuple[int, int] | None:
    try:
        module = base_model.get_submodule(module_name)
    except AttributeError:
        return None
    # Once peft has wrapped the model, the original layer sits under `base_layer`.
    module = getattr(module, "base_layer", module)
    in_features = getattr(module, "in_features", None)
    out_features = getattr(module, "out_features", None)
    if in_features is None or out_features is None:
        return None
    return int(in_features), int(out_features)


def validate_adapter_dir(
    name: str, path: Path, base_model: Any, base_identity: BaseIdentity | None = None
) -> AdapterFiles:
    """Read an adapter folder completely and check that it fits `base_model`; raise `AdapterLoadError` if not.

    With `base_identity`, an adapter that records another base (`tanya_base.json`) is refused even when
    its shapes fit: same-shaped models of another release or tokenizer load it and answer nonsense.
    """
    import torch  # heavy
    from safetensors import SafetensorError  # heavy
    from safetensors.torch import load_file  # heavy

    path = Path(path)
    prefix = f"adapter {name!r} at {path}"
    if not path.is_dir():
        raise AdapterLoadError(f"{prefix}: no such folder")
    config_file = path / CONFIG_FILENAME
    weights_file = path / WEIGHTS_FILENAME
    if not config_file.is_file():
        raise AdapterLoadError(f"{prefix}: {CONFIG_FILENAME} is missing")
    if not weights_file.is_file():
        raise AdapterLoadError(f"{prefix}: {WEIGHTS_FILENAME} is missing")
    if base_identity is not None:
        reason = mismatch(path, base_identity)
        if reason:
            raise AdapterLoadError(f"{prefix} belongs to another base model: {reason}")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise AdapterLoadError(
            f"{prefix}: {CONFIG_FILENAME} is not valid JSON ({_first_line(error)})"
        ) from error
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        raise AdapterLoadError(f"{prefix}: only LoRA adapters are supported (peft_type is not LORA)")
    try:
        tensors = load_file(str(weights_file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise AdapterLoadError(
            f"{prefix}: {WEIGHTS_FILENAME} is unreadable, probably truncated ({_first_line(error)})"
        ) from error

    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for tensor_name, tensor in tensors.items():
        split = _module_path(tensor_name)
        if split is None:
            continue
        module, part = split
        pairs.setdefault(module, {})[part] = tensor
        if not torch.isfinite(tensor).all():
            raise AdapterLoadError(f"{prefix}: {tensor_name} contains NaN or infinite values")
    if not pairs:
        raise AdapterLoadError(f"{prefix}: {WEIGHTS_FILENAME} holds no LoRA weights")
    for module, parts in sorted(pairs.items()):
        if set(parts) != {"lora_A", "lora_B"}:
            raise AdapterLoadError(f"{prefix}: {module} has only {', '.join(sorted(parts))}")
        shape = _linear_shape(base_model, module)
        if shape is None:
            raise AdapterLoadError(
                f"{prefix}: the base model has no linear layer {module}; trained on another model?"
            )
        in_features, out_features = shape
        lora_a, lora_b = parts["lora_A"], parts["lora_B"]
        if lora_a.shape[-1] != in_features or lora_b.shape[0] != out_features:
            raise AdapterLoadError(
                f"{prefix}: {module} expects {in_features}->{out_features} but the adapter has "
                f"{lora_a.shape[-1]}->{lora_b.shape[0]}; trained on another model?"
            )
    return AdapterFiles(path=path, config=config, tensor_names=tuple(sorted(tensors)))
