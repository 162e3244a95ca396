"""Prometheus metrics of a training run, labelled by job, served on a port from the config."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from finetune_api.measurements import RunMeasurements

from .progress import ProgressState

PHASES = ("Initializing", "Baseline", "Running", "Evaluating", "Publishing", "Succeeded", "Failed")


class PrometheusSink:
    def __init__(self, namespace: str, job: str, port: int, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.labels = {"namespace": namespace, "finetunejob": job}
        names = list(self.labels)

        def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> Gauge:
            return Gauge(f"finetune_trainer_{name}", doc, [*names, *extra], registry=self.registry)

        self.step = gauge("step", "Optimizer steps completed.")
        self.total_steps = gauge("total_steps", "Planned optimizer steps.")
        self.epoch = gauge("epoch", "Epochs completed (fractional).")
        self.progress = gauge("progress_ratio", "Completed fraction of the planned steps (0-1).")
        self.train_loss = gauge("train_loss", "Training loss, averaged over the last logging interval.")
        self.learning_rate = gauge("learning_rate", "Current learning rate.")
        self.eval_loss = gauge("eval_loss", "Latest evaluation loss.")
        self.eval_metric = gauge("eval_metric", "Latest value of the headline evaluation metric.", ("metric",))
        self.baseline_metric = gauge("baseline_metric", "Headline metric of the untouched model.", ("metric",))
        self.few_shot_metric = gauge(
            "few_shot_metric", "Headline metric of the untouched model with few-shot demonstrations.", ("metric",)
        )
        self.reference_perplexity = gauge(
            "reference_perplexity", "Perplexity on the forgetting check's reference text.", ("when",)
        )
        self.samples_per_second = gauge("samples_per_second", "Training samples per second.")
        self.tokens_per_second = gauge("tokens_per_second", "Non-padding training tokens per second.")
        self.gpu_memory = gauge("gpu_memory_allocated_bytes", "Peak GPU memory allocated by the trainer.", ("device",))
        self.phase = gauge("phase", "1 for the current phase of the run, else 0.", ("phase",))
        self.storage_retries = Counter(
            "finetune_trainer_storage_retries",
            "S3 requests and transfers retried, by operation (download, upload, ... or the S3 API call).",
            [*names, "operation"],
            registry=self.registry,
        )
        self.counted: dict[str, int] = {}
        self.server: Any = None
        if port:
            self.server, _thread = start_http_server(port, addr="0.0.0.0", registry=self.registry)  # noqa: S104 - scraped in-cluster

    def update(self, state: ProgressState) -> None:
        lbl = self.labels
        self.step.labels(**lbl).set(state.step)
        self.total_steps.labels(**lbl).set(state.total_steps)
        self.epoch.labels(**lbl).set(state.epoch)
        self.progress.labels(**lbl).set(state.step / state.total_steps if state.total_steps else 0)
        for gauge, value in (
            (self.train_loss, state.train_loss),
            (self.learning_rate, state.learning_rate),
            (self.eval_loss, state.eval_loss),
            (self.samples_per_second, state.samples_per_second),
        ):
            if value is not None:
                gauge.labels(**lbl).set(value)
        if state.measured is not None:
            self._measured(state.measured, state.eval_metric)
        for operation, total in state.storage_retries.items():
            if (new := total - self.counted.get(operation, 0)) > 0:
                self.storage_retries.labels(**lbl, operation=operation).inc(new)
                self.counted[operation] = total
        for phase in PHASES:
            self.phase.labels(**lbl, phase=phase).set(1 if phase == state.phase else 0)
        try:
            import torch

            for i in range(torch.cuda.device_count()):
                self.gpu_memory.labels(**lbl, device=str(i)).set(torch.cuda.max_memory_allocated(i))
        except Exception:  # noqa: BLE001, S110 - GPU metrics are best effort
            pass

    def _measured(self, m: RunMeasurements, eval_metric: float | None) -> None:
        lbl, metric = self.labels, str(m.metric)
        for gauge, value in (
            (self.eval_metric, eval_metric if eval_metric is not None else m.headline(m.tuned)),
            (self.baseline_metric, m.headline(m.baseline)),
            (self.few_shot_metric, m.headline(m.few_shot.scores) if m.few_shot else None),
        ):
            if value is not None:
                gauge.labels(**lbl, metric=metric).set(value)
        if m.cost.tokens_per_second is not None:
            self.tokens_per_second.labels(**lbl).set(m.cost.tokens_per_second)
        if m.forgetting is not None:
            for when, value in (("before", m.forgetting.before), ("after", m.forgetting.after)):
                if value is not None:
                    self.reference_perplexity.labels(**lbl, when=when).set(value)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
