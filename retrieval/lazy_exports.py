"""Package exports that are imported on first use, so that importing a package stays cheap.

The CLI's ``--help``, ``tanya status`` and the Slack app import parts of ``retrieval`` without needing
Haystack or torch; an ``__init__`` that imported its modules eagerly would load them all.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """A module ``__getattr__`` (PEP 562) and ``__all__`` for ``exports``, name → module that defines it."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(module), name)

    return __getattr__, sorted(exports)
