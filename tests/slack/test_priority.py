"""``AckFirst``: background work waits while deliveries are acknowledged, but never for long."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from bot.metrics import REGISTRY
from bot.slack.priority import AckFirst, AckFirstExecutor
from tests.slack import slack_requests as slack


def _gave_way() -> float:
    return REGISTRY.get_sample_value("tanya_slack_gave_way_seconds_total") or 0.0


def test_waiting_costs_nothing_when_no_acknowledgement_is_in_flight() -> None:
    acks = AckFirst(max_wait=30)
    assert acks.wait() == 0.0
    with acks.acknowledgement():
        assert acks.acknowledging == 1
    assert acks.acknowledging == 0 and acks.wait() == 0.0


def test_deferred_work_starts_when_the_last_acknowledgement_is_sent() -> None:
    acks = AckFirst(max_wait=30)
    ran = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        executor = AckFirstExecutor(pool, acks)
        acks.enter()
        acks.enter()
        future = executor.submit(ran.set)
        slack.wait_until(lambda: acks.waiting == 1, timeout=10, what="the task to stand aside")
        acks.leave()
        assert not ran.is_set() and acks.waiting == 1, "one acknowledgement is still in flight"
        acks.leave()
        future.result(timeout=10)
    assert ran.is_set() and acks.waiting == 0


def test_a_steady_stream_of_acknowledgements_delays_work_but_never_stops_it() -> None:
    acks = AckFirst(max_wait=0.05)
    counted = _gave_way()
    acks.enter()
    try:
        waited = acks.wait()
    finally:
        acks.leave()
    assert 0.05 <= waited < 10
    assert _gave_way() - counted >= 0.05, "the wait shows in the metrics"


def test_an_unbalanced_leave_does_not_leave_the_count_negative() -> None:
    acks = AckFirst(max_wait=30)
    acks.leave()
    assert acks.acknowledging == 0
    acks.enter()
    assert acks.acknowledging == 1


def test_the_executor_passes_results_and_errors_through() -> None:
    acks = AckFirst()
    with ThreadPoolExecutor(max_workers=1) as pool:
        executor = AckFirstExecutor(pool, acks)
        assert executor.submit(sum, [1, 2, 3]).result(timeout=10) == 6
        failed = executor.submit(int, "not a number")
        assert isinstance(failed.exception(timeout=10), ValueError)
