"""The progress of a run, and the sinks it is reported to.

The operator fills the FineTuneJob status from this (the Prometheus endpoint, or the JSON file the
trainer keeps beside its termination message); locally a tqdm bar shows it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass
class ProgressState:
    phase: str = "Initializing"
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    train_loss: float | None = None
    learning_rate: float | None = None
    eval_loss: float | None = None
    metric_name: str | None = None
    eval_metric: float | None = None
    baseline_metric: float | None = None
    few_shot_metric: float | None = None  # the headline metric of the untouched model prompted with demonstrations
    forgetting_before: float | None = None  # reference-text perplexity before training
    forgetting_after: float | None = None  # ... and after it
    samples_per_second: float | None = None
    tokens_per_second: float | None = None
    trainable_parameters: int | None = None
    train_seconds: float | None = None
    peak_memory_bytes: int | None = None
    last_checkpoint: str | None = None
    storage_retries: dict[str, int] = field(default_factory=dict)  # by operation (download, upload, GetObject...)
    storage_retrying: str | None = None  # the latest word on an operation being retried now
    checkpoints_failing: str | None = None  # why the last checkpoint could not be saved, until one is
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
        data = asdict(self)
        data.update(percent=self.percent, eta_seconds=self.eta_seconds)
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
        if state.eval_metric is not None and state.metric_name:
            post[state.metric_name] = f"{state.eval_metric:.4f}"
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

    def update(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.state, key, value)
        for sink in self.sinks:
            # Observability must never kill a paid-for training run.
            with contextlib.suppress(Exception):
                sink.update(self.state)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
