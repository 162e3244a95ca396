"""Kubernetes Events about a FineTuneJob (what `kubectl describe ftj` shows), posted in the background.

The operator writes its own Events instead of kopf's: status syncs run on the operator's own workers,
outside kopf's handler context, and kopf would also turn each of its INFO log lines about an object
(two per creation) into an Event of its own. Posting is fire-and-forget, like client-go's recorder: a
lost Event must never hold up or fail a reconcile.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
COMPONENT = "finetune-operator"
NORMAL, WARNING = "Normal", "Warning"


def render_event(obj: dict[str, Any], type_: str, reason: str, message: str, now: dt.datetime) -> dict[str, Any]:
    """A core/v1 Event about `obj` (a FineTuneJob body)."""
    meta = obj["metadata"]
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": os.environ.get("POD_ID") or COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventPoster:
    """One background thread that posts queued Events in order."""

    def __init__(self, post: Callable[[dict[str, Any]], Any], capacity: int = 10000) -> None:
        self._post = post
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def record(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        event = render_event(obj, type_, reason, message, dt.datetime.now(dt.UTC))
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            log.warning("event queue full; dropped %s/%s: %s", event["metadata"]["namespace"], reason, message)
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="event-poster", daemon=True)
                self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued Event was posted (or dropped); for tests and shutdown."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._queue.unfinished_tasks

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            try:
                self._post(event)
            except Exception as exc:  # noqa: BLE001 - an Event is informational; never stop posting the rest
                log.warning("could not post event %s: %s", event["reason"], exc)
            finally:
                self._queue.task_done()
