"""A FineTuneExperiment's MLflow run: the parent of its variants' runs, holding the comparison."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from finetune_api.v1alpha1.enums import Metric
from finetune_api.v1alpha1.experiment import FineTuneExperiment
from finetune_api.v1alpha1.experiment_status import VariantStatus

from .tracker import CLIENT_ENV, CLOSE_SECONDS, JOB_TAG, experiment_id, experiment_label, server_uri

log = logging.getLogger(__name__)


def track_experiment(experiment: FineTuneExperiment, metric: Metric, rows: list[VariantStatus], folder: Path) -> None:
    """The experiment as one parent run holding the comparison (chart, table, metric per variant), with each
    variant's run nested under it. Bounded like a job's run: a dead or hung server costs a warning."""
    template = experiment.spec.template
    wanted = template.tracking.mlflow if template.tracking else None
    uri = server_uri(wanted) if wanted else None
    if wanted is None or not uri:
        return
    for key, value in CLIENT_ENV.items():
        os.environ.setdefault(key, value)
    import mlflow.entities
    from mlflow import MlflowClient

    name = experiment.metadata.name
    label = experiment_label(wanted, experiment.metadata.namespace)

    def record() -> None:
        client = MlflowClient(tracking_uri=uri)
        in_experiment = experiment_id(client, label)
        parent = client.create_run(in_experiment, run_name=name, tags={"finetune.dev/experiment": name}).info.run_id
        stamp = int(time.time() * 1000)
        scores = [
            mlflow.entities.Metric(f"{r.name}.{metric}", r.metric, stamp, 0) for r in rows if r.metric is not None
        ]
        params = [
            mlflow.entities.Param("metric", str(metric)),
            mlflow.entities.Param("variants", ",".join(r.name for r in rows)),
        ]
        client.log_batch(parent, metrics=scores, params=params)
        for path in sorted(folder.iterdir()):
            client.log_artifact(parent, str(path))
        for row in rows:
            runs = client.search_runs([in_experiment], f"tags.`{JOB_TAG}` = '{row.job}'", max_results=1,
                                      order_by=["attributes.start_time DESC"])  # fmt: skip
            for run in runs:
                client.set_tag(run.info.run_id, "mlflow.parentRunId", parent)
        client.set_terminated(parent, "FINISHED")
        log.info("MLflow: experiment %s is run %s with %d variant runs nested", name, parent, len(rows))

    def guarded() -> None:
        try:
            record()
        except Exception as exc:  # noqa: BLE001 - the report is published whatever the tracking server does
            log.warning("MLflow at %s failed on experiment %s: %s; the report is published without it", uri, name,
                        str(exc)[:300])  # fmt: skip

    worker = threading.Thread(target=guarded, name="mlflow-experiment", daemon=True)
    worker.start()
    worker.join(CLOSE_SECONDS)
    if worker.is_alive():
        log.warning("MLflow at %s did not take experiment %s within %.0f s", uri, name, CLOSE_SECONDS)
