"""Acknowledgements first: background work steps aside while Slack deliveries are being acknowledged.

Slack retries a delivery that is not acknowledged within 3 s, and a slow acknowledgement is the one
latency a user cannot see yet pays for (duplicate work, retry storms). The work that follows an
acknowledgement (claiming a message in SQL, posting a placeholder, retrieval, generation) is soft: a
few milliseconds later is invisible in a reply that takes seconds. In one CPython process both share
the interpreter lock, so a burst of @mentions used to have its later acknowledgements wait behind the
lazy work of the earlier ones.

``AckFirst`` counts the deliveries being acknowledged (the HTTP front door enters and leaves it) and
lets background work wait, with the lock released, until none are, or at most ``max_wait``, so a
steady stream of requests slows background work down but never stops it. In Socket Mode nothing
enters it and waiting costs one uncontended lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from bot.metrics import GAVE_WAY_SECONDS

P = ParamSpec("P")
T = TypeVar("T")

MAX_WAIT_SECONDS = 0.25


class AckFirst:
    """How many acknowledgements are in flight, and a way for other work to wait for them."""

    def __init__(self, *, max_wait: float = MAX_WAIT_SECONDS) -> None:
        self.max_wait = max_wait
        self._idle = threading.Condition()
        self._acknowledging = 0
        self._waiting = 0

    @property
    def acknowledging(self) -> int:
        """Deliveries received and not yet answered."""
        return self._acknowledging

    @property
    def waiting(self) -> int:
        """Threads standing aside for them right now."""
        return self._waiting

    def enter(self) -> None:
        with self._idle:
            self._acknowledging += 1

    def leave(self) -> None:
        with self._idle:
            self._acknowledging -= 1
            if self._acknowledging <= 0:
                self._acknowledging = 0
                self._idle.notify_all()

    @contextmanager
    def acknowledgement(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def wait(self) -> float:
        """Block until no acknowledgement is in flight, or ``max_wait`` passed; returns the seconds waited."""
        with self._idle:
            if self._acknowledging == 0:
                return 0.0
            started = time.monotonic()
            self._waiting += 1
            try:
                self._idle.wait_for(lambda: self._acknowledging == 0, timeout=self.max_wait)
            finally:
                self._waiting -= 1
        waited = time.monotonic() - started
        GAVE_WAY_SECONDS.inc(waited)
        return waited

    def after_acks(self, fn: Callable[P, T]) -> Callable[P, T]:
        """``fn`` that first waits for the acknowledgements in flight."""

        def deferred(*args: P.args, **kwargs: P.kwargs) -> T:
            self.wait()
            return fn(*args, **kwargs)

        return deferred


class AckFirstExecutor(Executor):
    """An executor whose tasks start only once the acknowledgements in flight are sent.

    Bolt runs lazy listeners on the executor it is given; wrapping that one defers all lazy work
    without touching the listeners themselves.
    """

    def __init__(self, inner: Executor, acks: AckFirst) -> None:
        self.inner = inner
        self.acks = acks

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return self.inner.submit(self.acks.after_acks(fn), *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)
