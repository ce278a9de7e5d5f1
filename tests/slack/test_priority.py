"""``AckFirst``: background work waits while deliveries are acknowledged, but never for long."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.observability.metrics import REGISTRY
from bot.slack.priority import AckFirst, AckFirstExecutor, lower_thread_priority
from tests.slack import slack_requests as slack


def _gave_way() -> float:
    return REGISTRY.get_sample_value("tanya_slack_gave_way_seconds_total") or 0.0


def test_waiting_costs_nothing_when_no_acknowledgement_is_in_flight() -> None:
    acks = AckFirst(max_wait=30, settle=0)
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


def test_work_waits_until_a_burst_has_been_quiet_for_the_settle_time() -> None:
    acks = AckFirst(max_wait=30, settle=0.2)
    with acks.acknowledgement():
        pass
    waited = acks.wait()
    assert 0.15 <= waited < 10, "a burst's next request may be a moment away"
    acks.enter()
    result: list[float] = []
    waiter = threading.Thread(target=lambda: result.append(acks.wait()))
    waiter.start()
    slack.wait_until(lambda: acks.waiting == 1, timeout=10, what="the waiter to stand aside")
    acks.leave()
    waiter.join(timeout=10)
    assert result and result[0] >= 0.15, "the quiet time counts from the last acknowledgement sent"


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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux behaviour")
def test_lower_priority_applies_to_the_thread_and_the_threads_it_starts() -> None:
    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: dict[str, int] = {}

    def child() -> None:
        seen["child"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def answer_thread() -> None:
        before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        seen["applied"] = int(lower_thread_priority(3))
        seen["delta"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) - before
        started = threading.Thread(target=child)
        started.start()
        started.join(timeout=10)
        seen["before"] = before

    worker = threading.Thread(target=answer_thread)
    worker.start()
    worker.join(timeout=10)
    assert seen["applied"] == 1 and seen["delta"] == min(3, 19 - seen["before"])
    assert seen["child"] == seen["before"] + seen["delta"], "threads started later inherit it"
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before, "others keep theirs"
    assert lower_thread_priority(0) is False


def test_start_up_objects_are_left_out_of_full_collections() -> None:
    import gc

    from bot.slack.serve import freeze_loaded_objects

    loaded = [{"weight": i} for i in range(1000)]  # stands in for a model's objects
    try:
        frozen = freeze_loaded_objects()
        # Other tests' threads may free frozen objects meanwhile, so the count only shrinks from here.
        assert frozen >= gc.get_freeze_count() and frozen >= len(loaded)
        assert not any(obj is loaded for obj in gc.get_objects()), "a full pass no longer walks them"
    finally:
        gc.unfreeze()
    assert any(obj is loaded for obj in gc.get_objects())
