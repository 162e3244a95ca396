"""Hooks into the transformers training loop: progress, checkpoint upload, SIGTERM handling."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ..errors import StorageError
from ..observability.memory import PeakMemory
from ..observability.progress import Reporter
from ..tracking.tracker import Tracker
from .checkpoints import CheckpointStore

log = logging.getLogger(__name__)


def history_points(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """The loss points of a transformers log history, in the form on_log and on_evaluate record them."""
    points: list[dict[str, float]] = []
    for entry in log_history:
        for source, key in (("loss", "train_loss"), ("eval_loss", "eval_loss")):
            if source in entry and "step" in entry:
                points.append({"step": entry["step"], key: entry[source]})
    return points


class ProgressCallback(TrainerCallback):
    def __init__(
        self, reporter: Reporter, tokens_per_sample: float, metric_key: str, loss_log: list[dict[str, float]]
    ) -> None:
        self.reporter = reporter
        self.tokens_per_sample = tokens_per_sample
        self.metric_key = metric_key
        self.loss_log = loss_log
        self.t0 = time.time()
        self.step0 = 0
        self.last_eval: tuple[int, dict[str, float]] | None = None
        self.memory = PeakMemory()

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        self.t0, self.step0 = time.time(), state.global_step
        if state.global_step and not self.loss_log:
            # Resumed: the checkpoint's trainer state holds the history up to its step, so the
            # run's loss history (metrics.json, the loss curve) covers every step once.
            self.loss_log.extend(history_points(state.log_history))
        self.memory = PeakMemory()
        self.reporter.update(phase="Running", step=state.global_step, total_steps=state.max_steps)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        elapsed = max(time.time() - self.t0, 1e-9)
        samples = (
            (state.global_step - self.step0)
            * args.train_batch_size
            * args.gradient_accumulation_steps
            * args.world_size
        )
        self.reporter.update(
            step=state.global_step,
            epoch=state.epoch or 0.0,
            samples_per_second=samples / elapsed,
            cost={
                "tokens_per_second": samples * self.tokens_per_sample / elapsed,
                "train_seconds": elapsed,
                "peak_memory_bytes": self.memory.sample(),
            },
        )

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kw: Any,
    ) -> None:
        logs = logs or {}
        if "loss" in logs:
            self.loss_log.append({"step": state.global_step, "train_loss": logs["loss"]})
            self.reporter.update(train_loss=logs["loss"], learning_rate=logs.get("learning_rate"))

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kw: Any,
    ) -> None:
        metrics = metrics or {}
        self.last_eval = (state.global_step, dict(metrics))
        if "eval_loss" in metrics:
            self.loss_log.append({"step": state.global_step, "eval_loss": metrics["eval_loss"]})
        self.reporter.update(eval_loss=metrics.get("eval_loss"), eval_metric=metrics.get(self.metric_key))


class CheckpointSyncCallback(TrainerCallback):
    """After the loop writes checkpoint-N locally, copy it to the store (main process only).

    A checkpoint that cannot be saved (the store still failing after its retry budget) does not stop
    training: the run goes on, says so (a log line, status.storage.checkpointsFailing, which the operator
    shows as the CheckpointsFailing condition with an Event), tries again at the next checkpoint, and
    fails at publishing if the store never comes back. Training already paid for is not thrown away for
    a store that may return; the cost is that a preemption meanwhile resumes from an older checkpoint.
    """

    def __init__(self, checkpoints: CheckpointStore, reporter: Reporter) -> None:
        self.checkpoints = checkpoints
        self.reporter = reporter

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        if not state.is_world_process_zero:
            return
        local = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
        if not local.is_dir():
            return
        try:
            uri = self.checkpoints.save(local, state.global_step)
        except StorageError as exc:
            last = self.reporter.state.last_checkpoint or "none yet"
            why = (
                f"checkpoint step {state.global_step} was not saved ({exc.message}); "
                f"training goes on; last saved: {last}"
            )
            log.error("%s", why)
            self.reporter.update(checkpoints_failing=why)
            return
        if self.reporter.state.checkpoints_failing:
            log.info("checkpoints are saved again: %s", uri)
        self.reporter.update(last_checkpoint=uri, checkpoints_failing=None)


class PreemptionCallback(TrainerCallback):
    """SIGTERM (preemption, node drain, `kubectl delete`): save a checkpoint at the next step, then stop."""

    def __init__(self) -> None:
        self.requested = False
        # Only the main thread may install handlers; an embedded run (a thread) keeps the host's handler.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.requested = True

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        if self.requested:
            control.should_save = True
            control.should_training_stop = True


class TrackingCallback(TrainerCallback):
    """The loop's numbers into MLflow, per logged step (train_loss, learning_rate, eval_*)."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kw: Any,
    ) -> None:
        names = {"loss": "train_loss", "learning_rate": "learning_rate", "grad_norm": "grad_norm"}
        values = {
            names.get(key, key): float(value)
            for key, value in (logs or {}).items()
            if (key in names or key.startswith("eval_")) and isinstance(value, int | float)
        }
        if values:
            self.tracker.metrics(values, state.global_step)
