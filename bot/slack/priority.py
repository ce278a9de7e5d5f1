"""Acknowledgements first: background work steps aside while Slack deliveries are being acknowledged.

Slack retries a delivery that is not acknowledged within 3 s, and a slow acknowledgement is the one
latency a user cannot see yet pays for (duplicate work, retry storms). The work that follows an
acknowledgement (claiming a message in SQL, posting a placeholder, retrieval, generation) is soft: a
few milliseconds later is invisible in a reply that takes seconds. In one CPython process both share
the interpreter lock, so a burst of @mentions used to have its later acknowledgements wait behind the
lazy work of the earlier ones.

``AckFirst`` counts the deliveries being acknowledged (the HTTP front door enters and leaves it) and
lets background work wait, with the lock released, until none are, or at most ``max_wait``, so a
steady stream of requests slows background work down but never stops it. A burst does not arrive
all at once: between two of its requests the count can touch zero for a moment, so background work
also waits until none has been in flight for ``settle`` seconds. In Socket Mode nothing enters it and
waiting costs one uncontended lock.

The interpreter lock is not the only thing shared: a forward pass runs on every core, between two
points where it could wait. ``lower_thread_priority`` asks the OS to schedule answer threads (and the
threads they start, torch's included) after the acknowledging ones when both want a core.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from bot.observability.metrics import GAVE_WAY_SECONDS

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 0.25
SETTLE_SECONDS = 0.005


class AckFirst:
    """How many acknowledgements are in flight, and a way for other work to wait for them."""

    def __init__(self, *, max_wait: float = MAX_WAIT_SECONDS, settle: float = SETTLE_SECONDS) -> None:
        self.max_wait = max_wait
        self.settle = settle
        self._idle = threading.Condition()
        self._acknowledging = 0
        self._waiting = 0
        self._last_sent = float("-inf")

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
            self._last_sent = time.monotonic()
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

    def _quiet_in(self, now: float) -> float:
        """Seconds until it is quiet: 0 when nothing is in flight and the last was sent ``settle`` ago."""
        if self._acknowledging:
            return self.max_wait
        return max(0.0, self._last_sent + self.settle - now)

    def wait(self) -> float:
        """Block until it is quiet, or ``max_wait`` passed; returns the seconds waited."""
        with self._idle:
            started = time.monotonic()
            if self._quiet_in(started) == 0.0:
                return 0.0
            deadline = started + self.max_wait
            self._waiting += 1
            try:
                now = started
                while now < deadline and (pause := self._quiet_in(now)) > 0.0:
                    self._idle.wait(min(pause, deadline - now))
                    now = time.monotonic()
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


def lower_thread_priority(niceness: int) -> bool:
    """Make the calling thread, and the threads it starts from now on, ``niceness`` steps less urgent.

    Linux keeps a nice value per thread and new threads inherit it, so this reaches torch's compute
    threads too when the answer thread starts them. Elsewhere the value is per process, which would
    slow the acknowledgements as well, so nothing changes there. Returns whether it applied.
    """
    if niceness <= 0 or not sys.platform.startswith("linux"):
        return False
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + niceness))
    except OSError as exc:  # e.g. a seccomp profile that forbids it: answer at the usual priority
        log.warning("could not lower the priority of %s: %s", threading.current_thread().name, exc)
        return False
    return True


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
