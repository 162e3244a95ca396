"""The status-sync queue: repeated keys fold into one run, and no event after a run starts is lost."""

from __future__ import annotations

import threading
import time
from collections import Counter

from finetune_operator.workqueue import CoalescingQueue


def _wait_idle(queue: CoalescingQueue[str], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while queue.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert queue.pending() == 0, "the queue never drained"


def test_a_burst_for_one_key_is_one_run() -> None:
    runs: Counter[str] = Counter()
    queue = CoalescingQueue(lambda k: runs.update([k]), workers=2, delay=0.2, retry_delay=0.1)
    for _ in range(50):
        queue.add("ns/a")
    queue.add("ns/b")
    _wait_idle(queue)
    assert runs == {"ns/a": 1, "ns/b": 1}


def test_an_event_during_a_run_brings_exactly_one_more_run() -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[str] = []

    def work(key: str) -> None:
        runs.append(key)
        if len(runs) == 1:
            started.set()
            assert release.wait(5)

    queue = CoalescingQueue(work, workers=4, delay=0, retry_delay=0.1)
    queue.add("ns/a")
    assert started.wait(5)
    for _ in range(20):  # arrive while the first run still reads: it may have read before them
        queue.add("ns/a")
    time.sleep(0.1)
    assert runs == ["ns/a"], "one key never runs on two workers at once"
    release.set()
    _wait_idle(queue)
    assert runs == ["ns/a", "ns/a"]


def test_a_failed_run_is_retried() -> None:
    runs: list[str] = []

    def work(key: str) -> None:
        runs.append(key)
        if len(runs) == 1:
            raise RuntimeError("the API server is away")

    queue = CoalescingQueue(work, workers=1, delay=0, retry_delay=0.05)
    queue.add("ns/a")
    _wait_idle(queue)
    assert runs == ["ns/a", "ns/a"]


def test_keys_wait_their_delay_and_run_in_order() -> None:
    seen: list[tuple[str, float]] = []
    queue = CoalescingQueue(lambda k: seen.append((k, time.monotonic())), workers=1, delay=0.15, retry_delay=0.1)
    start = time.monotonic()
    queue.add("first")
    queue.add("second")
    _wait_idle(queue)
    assert [k for k, _ in seen] == ["first", "second"]
    assert seen[0][1] - start >= 0.15, "a key ran before its delay had passed"
