"""A FineTuneJob's MLflow run: opened with the job (reattached when resumed), its final numbers and published
output recorded, ended with the attempt."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from finetune_api.measurements import RunMeasurements
from finetune_api.pod_contract import MANIFEST, TRACKING_URI_ENV
from finetune_api.resolved import ResolvedJob
from finetune_api.v1alpha1.tracking import MlflowTracking

from ..errors import Preempted
from ..observability.progress import Reporter
from ..storage.store import Store
from .tracker import JOB_TAG, RUN_ID_FILE, Tracker, experiment_label, flatten, server_uri

log = logging.getLogger(__name__)
PREEMPTED_CLOSE_SECONDS = 10.0


def final_metrics(measured: RunMeasurements) -> dict[str, float]:
    """The run's numbers under one name each: baseline.*, few_shot.*, tuned.*, forgetting.*, cost.*."""
    groups: dict[str, Any] = {
        "baseline": measured.baseline,
        "few_shot": measured.few_shot.scores if measured.few_shot else {},
        "tuned": measured.tuned,
        "forgetting": measured.forgetting.model_dump(mode="json") if measured.forgetting else {},
        "cost": measured.cost.model_dump(mode="json"),
    }
    return {
        key: float(value)
        for key, value in flatten(groups)
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def open_tracker(job: ResolvedJob, store: Store, reporter: Reporter) -> Tracker | None:
    """The job's tracker when spec.tracking.mlflow asks for one; its run id is kept in `store` (the checkpoints')."""
    wanted = job.spec.tracking.mlflow if job.spec.tracking else None
    if wanted is None:
        return None
    uri = server_uri(wanted)
    if not uri:
        message = f"spec.tracking.mlflow names no uri and {TRACKING_URI_ENV} is unset: the run is not tracked"
        log.warning(message)
        reporter.update(tracking_failing=message)
        return None
    name, namespace = job.metadata.name, job.metadata.namespace or "default"

    def stored() -> str | None:
        return str(json.loads(store.read_bytes(RUN_ID_FILE))["runId"]) if store.exists(RUN_ID_FILE) else None

    def keep(run_id: str) -> None:
        store.write_bytes(RUN_ID_FILE, json.dumps({"runId": run_id, "uri": uri}).encode())

    tags = {JOB_TAG: name, "finetune.dev/namespace": namespace, "finetune.dev/method": job.spec.method.type}
    return Tracker(uri, experiment_name(job), name, stored, keep, reporter.update, tags)


def experiment_name(job: ResolvedJob) -> str:
    """spec.tracking.mlflow.experiment, by default the job's namespace."""
    wanted = job.spec.tracking.mlflow if job.spec.tracking else None
    return experiment_label(wanted or MlflowTracking(), job.metadata.namespace)


def registered_model_name(job: ResolvedJob) -> str:
    """spec.tracking.mlflow.registeredModel, by default the job's name."""
    wanted = job.spec.tracking.mlflow if job.spec.tracking else None
    return (wanted.registered_model if wanted else None) or job.metadata.name


def track_output(tracker: Tracker, job: ResolvedJob, folder: Path) -> None:
    """The published output in the run: its card, curve, metrics and manifest, and a registered model version
    whose source is the output's URI."""
    tracker.artifacts([folder / name for name in ("README.md", "loss_curve.png", "metrics.json", MANIFEST)])
    tracker.register(registered_model_name(job), job.spec.output.uri)


@contextmanager
def ending(tracker: Tracker | None) -> Iterator[None]:
    """Ends the run with the attempt: FINISHED, FAILED, or left running for the attempt that resumes it."""
    if tracker is None:
        yield
        return
    try:
        yield
    except Preempted:
        # Within the pod's grace period, after the checkpoint: a hung server must not eat what is left of it.
        tracker.close(None, wait=PREEMPTED_CLOSE_SECONDS)
        raise
    except BaseException:
        tracker.close("FAILED")
        raise
    tracker.close("FINISHED")
