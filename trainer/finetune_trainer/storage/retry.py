"""Bounded retries of one storage operation, counted and said aloud.

botocore retries each request a few times itself (standard mode); this loop retries the whole operation
(a multipart transfer, a listing) on what stays transient, until the retry budget is spent. A stall is a
read timeout (spec.s3.stallSeconds), so no attempt waits longer than that for a byte, and the budget
(spec.s3.retryBudgetSeconds) bounds the whole: a dead store ends the job with StorageError in minutes,
not at maxRuntime.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import StorageError
from .s3_errors import SDK_ERRORS, Corrupt, classify, storage_error

log = logging.getLogger(__name__)
T = TypeVar("T")
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0
RETRIED: tuple[type[BaseException], ...] = (*SDK_ERRORS, Corrupt)


@dataclass(frozen=True)
class RetryPolicy:
    stall_seconds: float
    budget_seconds: float


class RetryTally:
    """Retries so far in this process, by operation, and which operations are retrying now; listeners (the
    progress reporter) hear each change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.active: dict[str, str] = {}  # what is being retried -> the latest word on it
        self.listeners: list[Callable[[], None]] = []

    def record(self, operation: str, message: str, what: str | None = None) -> None:
        with self._lock:
            self.counts[operation] = self.counts.get(operation, 0) + 1
            if what is not None:
                self.active[what] = message
        self._tell()

    def settled(self, what: str) -> None:
        with self._lock:
            if self.active.pop(what, None) is None:
                return
        self._tell()

    def _tell(self) -> None:
        for listener in list(self.listeners):
            listener()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def retrying(self) -> str | None:
        """The latest word on an operation still being retried, or None when nothing is."""
        with self._lock:
            return next(reversed(self.active.values()), None)


TALLY = RetryTally()  # one per process: every store's retries reach the same metric


def with_retries(operation: str, where: str, policy: RetryPolicy, attempt: Callable[[], T]) -> T:
    """`attempt()` until it succeeds, fails for good, or the retry budget is spent; every failure as StorageError."""
    started = time.monotonic()
    delay = FIRST_DELAY_S
    tries = 0
    while True:
        tries += 1
        try:
            result = attempt()
        except RETRIED as exc:
            failure = classify(exc, policy.stall_seconds)
            spent = time.monotonic() - started
            pause = delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
            if not failure.transient:
                raise storage_error(operation, where, failure) from exc
            if spent + pause > policy.budget_seconds:
                detail = (
                    f"; gave up after {tries} attempts over {spent:.0f} s "
                    f"(retry budget {policy.budget_seconds:.0f} s, spec.s3.retryBudgetSeconds)"
                )
                TALLY.settled(f"{operation} {where}")  # no longer retrying: failed, and said so
                raise storage_error(operation, where, failure, detail) from exc
            message = (
                f"{operation} {where} failed ({failure.what}); retry {tries} in {pause:.0f} s, "
                f"{spent:.0f} s of the {policy.budget_seconds:.0f} s retry budget spent"
            )
            log.warning("storage: %s", message)
            TALLY.record(operation, message, what=f"{operation} {where}")
            time.sleep(pause)
            delay = min(delay * 2, MAX_DELAY_S)
            continue
        except OSError as exc:  # the local side: a full disk, a folder in the way
            raise StorageError(f"{operation} {where}: {exc.strerror or exc} on this machine's disk") from exc
        if tries > 1:
            log.info("storage: %s %s succeeded at attempt %d", operation, where, tries)
            TALLY.settled(f"{operation} {where}")
        return result
