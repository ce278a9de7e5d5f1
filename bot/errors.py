"""Which exceptions are the user's to fix, and how to say so in one line."""

from __future__ import annotations

import importlib

from storage import DatabaseError
from storage.feedback import UnknownInteractionError


class InputError(ValueError):
    """Input a person can fix; the message is shown to them as is."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Resolved lazily: importing retrieval pulls in Haystack, which ``tanya db upgrade`` does not need."""
    found: list[type[BaseException]] = [
        DatabaseError,
        UnknownInteractionError,
        FileNotFoundError,
        PermissionError,
    ]
    for module, name in (
        ("retrieval.stores.errors", "StoreUnavailableError"),
        ("retrieval.generation.bundled_models", "ModelPackageMissingError"),
        ("retrieval.generation.adapters", "AdapterLoadError"),
    ):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"no such file or folder: {exc.filename}"
    if isinstance(exc, PermissionError) and exc.filename:
        return f"permission denied: {exc.filename}"
    return first
