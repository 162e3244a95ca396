"""MLflow tracking, off the training thread: a tracking server that is down or slow costs a warning and a
status field (status.tracking.failing), never a failed or stalled run.

Every call to the server runs on one worker thread, in order. A failed call opens a breaker for BACKOFF_SECONDS:
records that arrive meanwhile are dropped (and counted in the warning), then the next one tries again. A resumed
job reattaches to its run by the id stored beside the checkpoints (RUN_ID_FILE), and logs no step the run
already holds.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from finetune_api.pod_contract import TRACKING_URI_ENV
from finetune_api.v1alpha1.tracking import MlflowTracking

log = logging.getLogger(__name__)
JOB_TAG = "finetune.dev/job"  # on each job's run: an experiment's parent finds its variants' runs by it
RUN_ID_FILE = "mlflow-run.json"  # beside the checkpoints
BACKOFF_SECONDS = 30.0
CLOSE_SECONDS = 60.0  # the most a finished run waits for the server to take its last records
# MLflow's own client defaults are a 120 s timeout and 7 retries with backoff: minutes per call on a dead server.
CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "10", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}
PARAM_MAX = 6000  # characters of one parameter's value the server stores

# Told of the run (tracking_run_id, tracking_url) and of trouble (tracking_failing: the message, None once the
# server answers again): Reporter.update.
Report = Callable[..., None]
Op = Callable[[Any, str], None]  # (client, run id)


def server_uri(wanted: MlflowTracking) -> str | None:
    """The spec's server, else the one the operator passes (its chart's default)."""
    return wanted.uri or os.environ.get(TRACKING_URI_ENV)


def experiment_label(wanted: MlflowTracking, namespace: str | None) -> str:
    """spec.tracking.mlflow.experiment, by default the namespace."""
    return wanted.experiment or namespace or "default"


def experiment_id(client: Any, name: str) -> str:
    """The MLflow experiment called `name`, made on first use."""
    found = client.get_experiment_by_name(name)
    return str(found.experiment_id) if found else str(client.create_experiment(name))


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested spec or measurements as dotted keys (training.learningRate); lists as JSON."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from flatten(inner, f"{prefix}{key}.")
    elif prefix:
        yield prefix[:-1], json.dumps(value) if isinstance(value, list) else value


class Tracker:
    """One MLflow run for one job (attempts included)."""

    def __init__(  # noqa: PLR0913 - where, what to call the run, and where to keep its id
        self,
        uri: str,
        experiment: str,
        run_name: str,
        stored_run_id: Callable[[], str | None],
        store_run_id: Callable[[str], None],
        report: Report,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        for key, value in CLIENT_ENV.items():
            os.environ.setdefault(key, value)
        # Imported here, once: two threads importing mlflow at once trip over its circular imports.
        import mlflow.entities
        from mlflow import MlflowClient

        self._entities, self._client_class = mlflow.entities, MlflowClient
        self.uri, self.experiment, self.run_name, self.tags = uri, experiment, run_name, dict(tags or {})
        self._stored, self._store, self._report = stored_run_id, store_run_id, report
        self.run_id: str | None = None
        self.logged_through: dict[str, int] = {}  # by metric, the highest step the run holds (a resumed one skips)
        self._queue: queue.Queue[tuple[str, Op] | None] = queue.Queue()
        self._down_until, self._dropped, self._failing = 0.0, 0, False
        self._thread = threading.Thread(target=self._work, name="mlflow", daemon=True)
        self._thread.start()

    # -- what the run records ---------------------------------------------------------------------------------

    def params(self, spec: Mapping[str, Any]) -> None:
        Param = self._entities.Param  # noqa: N806 - MLflow's class

        pairs = [(k, str(v)[:PARAM_MAX]) for k, v in flatten(spec) if v is not None]

        def op(client: Any, run_id: str) -> None:
            logged = {k for k in client.get_run(run_id).data.params}  # a resumed run has them: params are write-once
            fresh = [Param(k, v) for k, v in pairs if k not in logged]
            for start in range(0, len(fresh), 100):  # the server's batch limit
                client.log_batch(run_id, params=fresh[start : start + 100])

        self._submit("parameters", op)

    def metrics(self, values: Mapping[str, float], step: int) -> None:
        Metric = self._entities.Metric  # noqa: N806 - MLflow's class

        stamp = int(time.time() * 1000)
        batch = [Metric(k, float(v), stamp, step) for k, v in values.items()]

        def op(client: Any, run_id: str) -> None:
            fresh = [m for m in batch if step > self.logged_through.get(m.key, -1)]
            if fresh:
                client.log_batch(run_id, metrics=fresh)

        self._submit(f"metrics of step {step}", op)

    def artifacts(self, paths: list[Path]) -> None:
        def op(client: Any, run_id: str) -> None:
            for path in paths:
                if path.is_file():
                    client.log_artifact(run_id, str(path))

        self._submit("artifacts", op)

    def document(self, name: str, body: Mapping[str, Any]) -> None:
        """A JSON document as an artifact (the manifest)."""

        def op(client: Any, run_id: str) -> None:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / name
                path.write_text(json.dumps(body, indent=2))
                client.log_artifact(run_id, str(path))

        self._submit(name, op)

    def register(self, model: str, source: str) -> None:
        """A version of the registered model `model` whose source is the published output."""

        def op(client: Any, run_id: str) -> None:
            from mlflow.exceptions import MlflowException  # loaded with mlflow.entities

            try:
                client.create_registered_model(model)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            if any(v.name == model for v in client.search_model_versions(f"run_id='{run_id}'")):
                return  # a resumed attempt that had published already: one version per run
            client.create_model_version(model, source, run_id=run_id)

        self._submit(f"model version of {model}", op)

    def close(self, status: str | None, wait: float = CLOSE_SECONDS) -> None:
        """Ends the run as `status` (FINISHED, FAILED), or leaves it running for a resumed attempt (None); waits
        at most `wait` seconds for the server to take what is queued."""
        if status is not None:
            self._submit("the run's end", lambda client, run_id: client.set_terminated(run_id, status))
        self._queue.put(None)
        self._thread.join(wait)
        if self._thread.is_alive():
            message = f"MLflow at {self.uri} did not take the run's last records within {wait:.0f} s; they are lost"
            log.warning(message)
            self._report(tracking_failing=message)

    # -- the worker -------------------------------------------------------------------------------------------

    def _submit(self, what: str, op: Op) -> None:
        self._queue.put((what, op))

    def _work(self) -> None:
        client = self._client_class(tracking_uri=self.uri)
        while (item := self._queue.get()) is not None:
            what, op = item
            if time.monotonic() < self._down_until:
                self._dropped += 1
                continue
            try:
                run_id = self.run_id or self._attach(client)
                op(client, run_id)
            except Exception as exc:  # noqa: BLE001 - any failure of the server or the network: training goes on
                self._down_until = time.monotonic() + BACKOFF_SECONDS
                message = f"MLflow at {self.uri} failed on {what}: {str(exc)[:300]}; training goes on without it"
                log.warning("%s (retrying in %.0f s)", message, BACKOFF_SECONDS)
                self._failing = True
                self._report(tracking_failing=message)
                continue
            if self._failing:
                log.info("MLflow at %s answers again (%d records dropped meanwhile)", self.uri, self._dropped)
                self._failing = False
                self._report(tracking_failing=None)

    def _attach(self, client: Any) -> str:
        """The run of this job: the stored one (a resumed attempt), or a new one in the experiment."""
        stored = self._stored()
        if stored:
            run = client.get_run(stored)
            for key in run.data.metrics:
                self.logged_through[key] = max(m.step for m in client.get_metric_history(stored, key))
            log.info("MLflow: continuing run %s after step %d", stored, max(self.logged_through.values(), default=0))
            self.run_id = stored
            self._report(tracking_run_id=stored, tracking_url=self._url(run.info.experiment_id, stored))
            return stored
        in_experiment = experiment_id(client, self.experiment)
        run = client.create_run(in_experiment, run_name=self.run_name, tags=self.tags)
        self.run_id = run.info.run_id
        self._store(self.run_id)
        log.info("MLflow: run %s in experiment %r at %s", self.run_id, self.experiment, self.uri)
        self._report(tracking_run_id=self.run_id, tracking_url=self._url(in_experiment, self.run_id))
        return self.run_id

    def _url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
