"""Client-side clocks: when each FineTuneJob was sent, and when its Job and its Running phase were seen.

Kubernetes timestamps have one-second resolution, so latencies are taken on this side, from the
moment the create request left to the moment a watch event arrived.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from urllib3.exceptions import HTTPError

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

    def span(self, table: dict[str, float]) -> float | None:
        """From the first create sent to the last mark in `table`."""
        with self.lock:
            return max(table.values()) - min(self.sent.values()) if table and self.sent else None

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

    def _stream(self, path: str, query: list[tuple[str, str]]) -> Iterator[dict[str, Any]]:
        """Objects from a raw watch, decoded as plain JSON: the harness shares the operator's cores, and
        the client library's typed models would cost it more CPU than the operator spends per job."""
        while not self.stop.is_set():
            method, url, headers, _, _ = self.client.param_serialize(
                "GET", path, query_params=[*query, ("watch", "true"), ("timeoutSeconds", "30")],
                header_params={"Accept": "application/json"}, auth_settings=["BearerToken"],
            )  # fmt: skip
            response = self.client.call_api(method, url, header_params=headers, _request_timeout=(10, 60))
            if response.status != 200:
                response.read()
                # A busy API server can refuse a watch for a moment (429, 504): watch afresh; marks are
                # first-seen only, so the replayed ADDED events change nothing.
                if response.status in (410, 429, 504):
                    time.sleep(0.5)
                    continue
                raise RuntimeError(f"watch {path}: HTTP {response.status}")
            # A dropped connection (an API server under load, or stopping) ends this watch: watch afresh.
            with contextlib.suppress(HTTPError, OSError):
                yield from self._events(response)

    def _events(self, response: Any) -> Iterator[dict[str, Any]]:
        pending = b""
        for chunk in response.response.stream(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                event = json.loads(line)
                if event["type"] == "ERROR" or self.stop.is_set():  # ERROR: an expired resourceVersion
                    return
                yield event["object"]

    def _jobs(self) -> None:
        path = f"/apis/batch/v1/namespaces/{self.namespace}/jobs"
        for job in self._stream(path, [("labelSelector", "finetune.dev/job")]):
            self.clocks.mark(self.clocks.job_seen, job["metadata"]["labels"]["finetune.dev/job"])

    def _finetunejobs(self) -> None:
        for ftj in self._stream(f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/{PLURAL}", []):
            if (ftj.get("status") or {}).get("phase") == "Running":
                self.clocks.mark(self.clocks.running_seen, ftj["metadata"]["name"])
