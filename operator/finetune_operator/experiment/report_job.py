"""The report step: one small Job, started once every variant has finished, that writes the comparison.

The operator holds no storage credentials and imports no plotting library, so it does not write to
S3 itself. This Job runs the trainer image (which has both) with the template's S3 settings and
credentials by reference, reads the comparison the operator wrote into its ConfigMap, publishes
comparison.md/.png/.json with a manifest under <output>/comparison/, and promotes the best output.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from finetune_api.experiment.expand import EXPERIMENT_LABEL
from finetune_api.resolve import resolve_job
from finetune_api.v1alpha1.enums import Metric
from finetune_api.v1alpha1.experiment import REPORT_NAME, FineTuneExperiment
from finetune_api.v1alpha1.experiment_status import BestVariant, VariantStatus
from finetune_api.v1alpha1.job import FineTuneJob, ObjectMeta
from finetune_api.v1alpha1.resources import ResourcesSpec

from ..naming import MANAGED_BY
from ..render.pod import pod_template
from ..settings import OperatorSettings

MOUNT = "/etc/finetune"
EXPERIMENT_KEY = "experiment.yaml"
COMPARISON_KEY = "comparison.json"
COMPONENT = {"app.kubernetes.io/component": "experiment-report"}


def report_name(experiment: str) -> str:
    return f"{experiment}-{REPORT_NAME}"


def report_labels(experiment: str) -> dict[str, str]:
    # Not the FineTuneJob label: the FineTuneJob handlers must not take this Job for a trainer's.
    return {**MANAGED_BY, **COMPONENT, EXPERIMENT_LABEL: experiment}


def _metadata(experiment: FineTuneExperiment) -> dict[str, Any]:
    name = experiment.metadata.name
    return {"name": report_name(name), "namespace": experiment.metadata.namespace, "labels": report_labels(name)}


def comparison_payload(rows: list[VariantStatus], metric: Metric, best: BestVariant | None) -> str:
    return json.dumps(
        {
            "metric": str(metric),
            "best": best.model_dump(by_alias=True, mode="json") if best else None,
            "variants": [r.model_dump(by_alias=True, exclude_none=True, mode="json") for r in rows],
        },
        indent=2,
    )


def config_map(experiment: FineTuneExperiment, payload: str) -> dict[str, Any]:
    name = experiment.metadata.name
    body = experiment.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"status"})
    body["metadata"] = {"name": name, "namespace": experiment.metadata.namespace}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": report_name(name),
            "namespace": experiment.metadata.namespace,
            "labels": report_labels(name),
        },
        "data": {EXPERIMENT_KEY: yaml.safe_dump(body, sort_keys=False), COMPARISON_KEY: payload},
    }


def job(experiment: FineTuneExperiment, settings: OperatorSettings) -> dict[str, Any]:
    name = experiment.metadata.name
    template = experiment.spec.template
    # The trainer pod's template (security context, S3 credentials by reference, placement), sized for
    # a step that reads a few manifests and draws one chart: no GPU, one node.
    small = template.model_copy(
        update={"resources": ResourcesSpec(gpus=0, nodes=1, cpu="1", memory="2Gi"), "service_account_name": None}
    )
    pseudo = resolve_job(
        FineTuneJob(metadata=ObjectMeta(name=report_name(name), namespace=experiment.metadata.namespace), spec=small),
        pod=settings.pod_defaults,
    )
    pod = pod_template(pseudo, settings)
    pod["metadata"]["labels"] = {**(experiment.metadata.labels or {}), **report_labels(name)}
    pod["metadata"].pop("annotations", None)  # no metrics endpoint to scrape
    spec = pod["spec"]
    spec["serviceAccountName"] = template.service_account_name or "default"
    spec["automountServiceAccountToken"] = template.service_account_name is not None  # only for IRSA-style roles
    spec["terminationGracePeriodSeconds"] = 30
    (container,) = spec["containers"]
    container["name"] = "report"
    container["command"] = [
        "python",
        "-m",
        "finetune_trainer.experiment.step",
        f"--experiment={MOUNT}/{EXPERIMENT_KEY}",
        f"--comparison={MOUNT}/{COMPARISON_KEY}",
    ]
    container.pop("ports", None)
    for volume in spec["volumes"]:
        if volume["name"] == "config":
            volume["configMap"] = {"name": report_name(name)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": report_name(name),
            "namespace": experiment.metadata.namespace,
            "labels": report_labels(name),
        },
        "spec": {"backoffLimit": 2, "template": pod},
    }
