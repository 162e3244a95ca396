"""The progress of a run, and the sinks it is reported to.

The operator fills the FineTuneJob status from this (the Prometheus endpoint, or the JSON file the
trainer keeps beside its termination message); locally a tqdm bar shows it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from finetune_api.measurements import RunMeasurements


@dataclass
class ProgressState:
    """How the run goes now (the loop's live numbers), and what it has measured so far."""

    phase: str = "Initializing"
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    train_loss: float | None = None
    learning_rate: float | None = None
    eval_loss: float | None = None  # the latest evaluation's, in the loop or of the untouched model
    eval_metric: float | None = None  # ... and its headline metric
    samples_per_second: float | None = None
    last_checkpoint: str | None = None
    storage_retries: dict[str, int] = field(default_factory=dict)  # by operation (download, upload, GetObject...)
    storage_retrying: str | None = None  # the latest word on an operation being retried now
    checkpoints_failing: str | None = None  # why the last checkpoint could not be saved, until one is
    tracking_run_id: str | None = None  # the MLflow run
    tracking_url: str | None = None
    tracking_failing: str | None = None  # why the tracking server is not taking records, until it does
    measured: RunMeasurements | None = None  # set once the headline metric is known (the resolved spec)
    started: float = field(default_factory=time.time)

    @property
    def percent(self) -> int:
        return int(100 * self.step / self.total_steps) if self.total_steps else 0

    @property
    def eta_seconds(self) -> int | None:
        if not self.step or not self.total_steps:
            return None
        elapsed = time.time() - self.started
        return int(elapsed / self.step * (self.total_steps - self.step))

    def as_status(self) -> dict[str, Any]:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "measured"}
        data.update(percent=self.percent, eta_seconds=self.eta_seconds)
        data["measured"] = self.measured.model_dump(mode="json") if self.measured else None
        return data


class Sink(Protocol):
    def update(self, state: ProgressState) -> None: ...
    def close(self) -> None: ...


class StatusFileSink:
    """progress.json, rewritten atomically: the status hook for anything that watches the pod."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def update(self, state: ProgressState) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.as_status()))
        os.replace(tmp, self.path)

    def close(self) -> None:
        pass


class BarSink:
    """A tqdm progress bar with loss and ETA, for local runs."""

    def __init__(self) -> None:
        self.bar: Any = None

    def update(self, state: ProgressState) -> None:
        from tqdm.auto import tqdm

        if state.phase != "Running":
            self.close()
            return
        if self.bar is None:
            self.bar = tqdm(
                total=state.total_steps, initial=state.step, desc="training", unit="step", dynamic_ncols=True
            )
        self.bar.n = state.step
        post = {}
        if state.train_loss is not None:
            post["loss"] = f"{state.train_loss:.4f}"
        if state.eval_metric is not None and state.measured:
            post[str(state.measured.metric)] = f"{state.eval_metric:.4f}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Reporter:
    """Fans progress out to every sink; sinks never break training."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks
        self.state = ProgressState()
        self._lock = threading.RLock()  # the tracking thread reports too

    def update(self, cost: Mapping[str, Any] | None = None, **changes: Any) -> None:
        """Live fields of the state; `cost`: fields of the measured cost (throughput, memory), in the same update."""
        with self._lock:
            for key, value in changes.items():
                setattr(self.state, key, value)
            measured = self.state.measured
            if cost and measured is not None:
                self.state.measured = measured.model_copy(update={"cost": measured.cost.model_copy(update=cost)})
            self._publish()

    def measure(self, **changes: Any) -> RunMeasurements:
        """Fields of the run's measurements, as a stage measured them; returns the record so far."""
        with self._lock:
            if self.state.measured is None:
                raise RuntimeError("measure() before the headline metric is known: update(measured=...) first")
            self.state.measured = self.state.measured.model_copy(update=changes)
            self._publish()
            return self.state.measured

    def _publish(self) -> None:
        for sink in self.sinks:
            # Observability must never kill a paid-for training run.
            with contextlib.suppress(Exception):
                sink.update(self.state)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
