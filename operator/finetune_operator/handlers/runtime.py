"""What the operator process holds while it runs: its settings, its API client and its work queues.

Built once, by the startup handler (handlers/main.py), never at import: importing a handler module reads
no environment and opens nothing, and each kopf run gets its own (a test process runs several). The
handlers reach it through `current()`; kopf starts watching only after the startup handlers finished.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..events import WARNING
from ..kube import KubeApi
from ..metrics import OPERATOR_METRICS
from ..settings import OperatorSettings
from ..workqueue import CoalescingQueue

Key = tuple[str, str]  # (namespace, name)
RETRY_SECONDS = 5.0  # a failed reconcile or sync runs again after this; the API server may be back by then
EXPERIMENT_WORKERS = 4  # experiments are few and each reconcile is a handful of reads


@dataclass(frozen=True)
class Work:
    """What each queue runs for a key: the handler modules' own functions, given the runtime."""

    reconcile: Callable[[Runtime, Key], None]
    sync_status: Callable[[Runtime, Key], None]
    reconcile_experiment: Callable[[Runtime, Key], None]


class Runtime:
    def __init__(self, settings: OperatorSettings, work: Work) -> None:
        self.settings = settings
        # Reconciles, status syncs, the Event poster and the phase gauge may all call at once.
        self.api = KubeApi(connections=settings.workers + settings.status_workers + 2)
        # The body of the event that queued a reconcile: the first run needs no read of its own.
        self.latest: dict[Key, dict[str, Any]] = {}
        self.reconciles: CoalescingQueue[Key] = CoalescingQueue(
            partial(work.reconcile, self),
            workers=settings.workers,
            delay=0,
            retry_delay=RETRY_SECONDS,
            name="reconcile",
        )
        self.status_syncs: CoalescingQueue[Key] = CoalescingQueue(
            partial(work.sync_status, self),
            workers=settings.status_workers,
            delay=settings.status_sync_delay,
            retry_delay=RETRY_SECONDS,
            name="status-sync",
        )
        self.experiments: CoalescingQueue[Key] = CoalescingQueue(
            partial(work.reconcile_experiment, self),
            workers=EXPERIMENT_WORKERS,
            delay=settings.status_sync_delay,
            retry_delay=RETRY_SECONDS,
            name="experiment",
        )
        self.heartbeat: asyncio.Task[None] | None = None  # held so the task is not collected
        self.stopped = threading.Event()  # the threads of this run (the phase gauge) end when it is set

    def report_failure(self, body: dict[str, Any], exc: Exception) -> None:
        """A failed run of a queue, shown where kopf's own retries showed it: the error metric and an Event."""
        OPERATOR_METRICS.errors.labels(reason=type(exc).__name__).inc()
        text = f"{type(exc).__name__}: {exc}; retrying in {RETRY_SECONDS:.0f} s"
        self.api.record_event(body, WARNING, "ReconcileFailed", text)

    def stop(self) -> None:
        self.stopped.set()
        for queue in (self.reconciles, self.status_syncs, self.experiments):
            queue.stop()
        if self.heartbeat is not None:
            self.heartbeat.cancel()


_current: Runtime | None = None


def start(settings: OperatorSettings, work: Work) -> Runtime:
    global _current  # noqa: PLW0603 - the one runtime of this kopf run, replaced by the next run's
    if _current is not None:
        _current.stop()
    _current = Runtime(settings, work)
    return _current


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("the operator's runtime is built by its startup handler; no kopf run has started")
    return _current
