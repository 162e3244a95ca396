"""Client-side clocks: when each FineTuneJob was sent, and when its Job and its Running phase were seen.

Kubernetes timestamps have one-second resolution, so latencies are taken on this side, from the
moment the create request left to the moment a watch event arrived.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from finetune_api import GROUP, PLURAL, VERSION


@dataclass
class Clocks:
    sent: dict[str, float] = field(default_factory=dict)
    job_seen: dict[str, float] = field(default_factory=dict)
    running_seen: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, table: dict[str, float], name: str) -> None:
        with self.lock:
            table.setdefault(name, time.perf_counter())

    def latencies(self, table: dict[str, float]) -> list[float]:
        with self.lock:
            return sorted(table[n] - self.sent[n] for n in table if n in self.sent)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return sorted(values)[index]


class Watchers:
    """Two watches in the benchmark's namespace: Jobs (by our label) and FineTuneJobs (by phase)."""

    def __init__(self, api_client: Any, namespace: str, clocks: Clocks) -> None:
        self.client, self.namespace, self.clocks = api_client, namespace, clocks
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._jobs, daemon=True),
            threading.Thread(target=self._finetunejobs, daemon=True),
        ]

    def __enter__(self) -> Watchers:
        for thread in self.threads:
            thread.start()
        time.sleep(1)  # both watches established before the first create
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()

    def _stream(self, list_call: Any, **kwargs: Any) -> Any:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        while not self.stop.is_set():
            stream = watch.Watch().stream(list_call, timeout_seconds=30, **kwargs)  # type: ignore[no-untyped-call]
            try:
                for event in stream:
                    if self.stop.is_set():
                        return
                    yield event["object"]
            except ApiException as exc:
                # A watch resumed ahead of a busy API server's cache (504, 410): list and watch afresh;
                # marks are first-seen only, so the replayed ADDED events change nothing.
                if exc.status not in (410, 504):
                    raise

    def _jobs(self) -> None:
        from kubernetes import client

        batch = client.BatchV1Api(self.client)
        for job in self._stream(batch.list_namespaced_job, namespace=self.namespace, label_selector="finetune.dev/job"):
            self.clocks.mark(self.clocks.job_seen, job.metadata.labels["finetune.dev/job"])

    def _finetunejobs(self) -> None:
        from kubernetes import client

        custom = client.CustomObjectsApi(self.client)
        for ftj in self._stream(custom.list_namespaced_custom_object, group=GROUP, version=VERSION,
                                namespace=self.namespace, plural=PLURAL):  # fmt: skip
            if (ftj.get("status") or {}).get("phase") == "Running":
                self.clocks.mark(self.clocks.running_seen, ftj["metadata"]["name"])
