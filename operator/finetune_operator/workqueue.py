"""A work queue that folds repeated keys into one run, with the semantics of client-go's workqueue.

A FineTuneJob's status is computed from its Job and pods, and each of those sends a burst of watch
events as a job starts (pod created, scheduled, started; Job active, ready). Syncing once per event
read the FineTuneJob, the Job and the pods several times per job within a second. Here an event only
names its FineTuneJob: a key already waiting is not queued again, and a key added while it is being
synced runs once more afterwards, so the last event is never missed and reads are always fresh.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)


class CoalescingQueue(Generic[K]):
    def __init__(
        self, work: Callable[[K], None], *, workers: int, delay: float, retry_delay: float, name: str = "sync"
    ) -> None:
        self._work, self._workers, self._name = work, workers, name
        self._delay, self._retry_delay = delay, retry_delay
        self._cond = threading.Condition()
        self._waiting: dict[K, float] = {}  # key -> when it may run
        self._heap: list[tuple[float, int, K]] = []
        self._order = itertools.count()
        self._running: set[K] = set()
        self._again: set[K] = set()  # added while running: run once more when that run ends
        self._threads: list[threading.Thread] = []
        self._stopped = False

    def add(self, key: K) -> None:
        with self._cond:
            if self._stopped:
                return
            if key in self._running:
                self._again.add(key)
            else:
                self._schedule(key, self._delay)
            if not self._threads:
                self._start()

    def stop(self) -> None:
        """Workers finish the run they are in and exit; what is still waiting is dropped (a restart lists anew)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._waiting) + len(self._running)

    def _schedule(self, key: K, delay: float) -> None:
        if key in self._waiting:
            return  # this event is folded into the run already waiting
        at = time.monotonic() + delay
        self._waiting[key] = at
        heapq.heappush(self._heap, (at, next(self._order), key))
        self._cond.notify()

    def _start(self) -> None:
        for i in range(self._workers):
            thread = threading.Thread(target=self._loop, name=f"{self._name}-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _take(self) -> K | None:
        with self._cond:
            while True:
                if self._stopped:
                    return None
                if self._heap:
                    at, _, key = self._heap[0]
                    wait = at - time.monotonic()
                    if wait <= 0:
                        heapq.heappop(self._heap)
                        del self._waiting[key]
                        self._running.add(key)
                        return key
                    self._cond.wait(wait)
                else:
                    self._cond.wait()

    def _loop(self) -> None:
        while True:
            key = self._take()
            if key is None:
                return
            failed = False
            try:
                self._work(key)
            except Exception:
                log.exception("%s of %s failed; retrying in %ss", self._name, key, self._retry_delay)
                failed = True
            with self._cond:
                self._running.discard(key)
                if failed:
                    self._again.discard(key)
                    self._schedule(key, self._retry_delay)
                elif key in self._again:
                    self._again.discard(key)
                    self._schedule(key, self._delay)
