"""The one error every document store raises when it cannot be used, so callers need not know which."""

from __future__ import annotations


class StoreUnavailableError(RuntimeError):
    """The configured document store cannot be reached or read; the message is one line for the operator."""
