"""The operator's own Prometheus metrics: FineTuneJobs by phase, reconcile latency, errors by reason, experiments."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from finetune_api.v1alpha1.enums import Phase


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Gauge("finetune_operator_finetunejobs", "FineTuneJobs by phase.", ["phase"], registry=self.registry)
        self.reconcile = Histogram(
            "finetune_operator_reconcile_duration_seconds",
            "Time to reconcile one FineTuneJob.",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.errors = Counter(
            "finetune_operator_reconcile_errors", "Reconcile errors by reason.", ["reason"], registry=self.registry
        )
        for phase in Phase:
            self.jobs.labels(phase=phase.value).set(0)
        # The cost of sharing the cluster through Kueue, per LocalQueue.
        queue = ["namespace", "queue"]
        self.queue_wait = Histogram(
            "finetune_operator_queue_wait_seconds",
            "Time a FineTuneJob waited in its Kueue queue before each admission.",
            queue,
            registry=self.registry,
            buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600),
        )
        self.preemptions = Counter(
            "finetune_operator_preemptions", "FineTuneJobs preempted by Kueue.", queue, registry=self.registry
        )
        # One series per experiment variant: the comparison of `kubectl get ftx -o yaml`, for the dashboard.
        variant = ["namespace", "experiment", "variant"]
        self.variant_metric = Gauge(
            "finetune_operator_experiment_variant_metric",
            "The compared metric of each experiment variant (tuned model).",
            [*variant, "metric"],
            registry=self.registry,
        )
        self.variant_parameters = Gauge(
            "finetune_operator_experiment_variant_trainable_parameters",
            "Parameters each experiment variant trained.",
            variant,
            registry=self.registry,
        )
        self.variant_seconds = Gauge(
            "finetune_operator_experiment_variant_train_seconds",
            "Training time of each experiment variant.",
            variant,
            registry=self.registry,
        )

    def transition(self, old: str | None, new: str) -> None:
        if old:
            self.jobs.labels(phase=old).dec()
        self.jobs.labels(phase=new).inc()

    def queue_cost(self, namespace: str, queue: str, waited: float | None, preempted: int) -> None:
        """A wait that ended (admitted), and preemptions seen since the last status."""
        if waited is not None:
            self.queue_wait.labels(namespace=namespace, queue=queue).observe(waited)
        if preempted > 0:
            self.preemptions.labels(namespace=namespace, queue=queue).inc(preempted)

    def set_phases(self, counts: dict[str, int]) -> None:
        """Resynchronise the phase gauge with a full listing (transitions alone drift across restarts)."""
        for phase in Phase:
            self.jobs.labels(phase=phase.value).set(counts.get(phase.value, 0))

    def set_variant(
        self, namespace: str, experiment: str, variant: str, metric: str, values: tuple[float | None, ...]
    ) -> None:
        """values: (metric, trainable parameters, train seconds); unknown ones are left unset."""
        labels = {"namespace": namespace, "experiment": experiment, "variant": variant}
        value, params, seconds = values
        if value is not None:
            self.variant_metric.labels(**labels, metric=metric).set(value)
        if params is not None:
            self.variant_parameters.labels(**labels).set(params)
        if seconds is not None:
            self.variant_seconds.labels(**labels).set(seconds)

    def serve(self, port: int) -> None:
        start_http_server(port, addr="0.0.0.0", registry=self.registry)  # noqa: S104 - scraped in-cluster


OPERATOR_METRICS = OperatorMetrics()
