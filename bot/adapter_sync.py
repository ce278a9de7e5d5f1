"""Hot-swapping the LoRA adapter a running bot answers with, to follow the registry.

Before each answer the bot reads which adapter the registry marks active and hands it to `AdapterSync`,
which brings the generator in line:

* An answer already being generated keeps the adapter it started with (the generator applies a new one
  from its next generation on).
* An adapter whose files do not hash to the registered sha256, or that the generator cannot load, is
  refused and remembered for a few minutes; the previous one stays active, and the refusal is one log
  line, never an error for the person asking.
* An in-process generator keeps the new and the previous adapter loaded, so a rollback is instant.
* An OpenAI-compatible server (vLLM) is asked to load the new adapter from the path where *it* sees the
  registry (`server_adapters_dir`), and to unload the previous one once no answer of this process still
  generates with it; a rollback loads the previous one again and unloads the rolled-back one.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from alignment.registry import verify_adapter

log = logging.getLogger(__name__)

# A refused adapter is tried again after this long, so that a server which was restarting when an
# adapter was promoted does not leave the bot on the old one until it restarts too.
RETRY_SECONDS = 300.0

Wanted = tuple[str, str, str | None]  # (name, registry path, sha256) of the active adapter


class AdapterSync:
    """Keeps one generator on the registry's active adapter; thread-safe, one instance per generator."""

    def __init__(
        self, *, server_adapters_dir: str | None = None, retry_seconds: float = RETRY_SECONDS
    ) -> None:
        """
        :param server_adapters_dir: the registry's adapters folder as an OpenAI-compatible server sees it;
            None: the server reads the path the registry recorded.
        """
        self.server_adapters_dir = server_adapters_dir
        self.retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._loaded: set[str] = set()
        self._refused: dict[tuple[str, str | None], float] = {}  # → when it was refused

    def sync(self, generator: Any, wanted: Wanted | None) -> None:
        """Makes `wanted` (None: the base model) the generator's adapter, and frees what is no longer needed."""
        if not hasattr(generator, "load_adapter"):
            return
        served = not hasattr(generator, "loaded_adapters")  # the server, not this process, holds the weights
        with self._lock:
            current = generator.active_adapter
            active = self._switch(generator, wanted, current, served)
            if served:
                self._unload(
                    generator, self._loaded - {active} - set(getattr(generator, "busy_adapters", ()))
                )
            elif active != current:
                self._unload(generator, self._loaded - {active, current})

    def location(self, path: str, served: bool) -> Path:
        """The adapter folder as the generator reads it: on a server, under `server_adapters_dir`."""
        if served and self.server_adapters_dir:
            return Path(self.server_adapters_dir) / Path(path).name
        return Path(path)

    def _switch(self, generator: Any, wanted: Wanted | None, current: str | None, served: bool) -> str | None:
        if wanted is None:
            if current is not None:
                generator.activate_adapter(None)
                log.info("adapter %s taken out of service; the base model answers", current)
            return None
        name, path, sha256 = wanted
        refused_at = self._refused.get((name, sha256))
        if current == name or (refused_at is not None and time.monotonic() - refused_at < self.retry_seconds):
            return current
        try:
            if name not in self._loaded and name not in getattr(generator, "loaded_adapters", ()):
                if not served or Path(path).exists():
                    verify_adapter(Path(path), sha256)  # the bundled generator reads these very files
                generator.load_adapter(name, self.location(path, served))
            self._loaded.add(name)
            generator.activate_adapter(name)
        except Exception as exc:
            self._refused[(name, sha256)] = time.monotonic()
            log.error("keeping adapter %s: refused %s: %s", current or "(base model)", name, exc)
            return current
        self._refused.pop((name, sha256), None)
        log.info("adapter %s now answers (was %s)", name, current or "the base model")
        return name

    def _unload(self, generator: Any, names: set[str]) -> None:
        for stale in sorted(names):
            try:
                generator.unload_adapter(stale)
                self._loaded.discard(stale)
            except Exception as exc:  # tried again after the next answer
                log.warning("could not unload adapter %s: %s", stale, exc)
