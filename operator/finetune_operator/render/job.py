"""The batch/v1 Job: one pod, or an Indexed Job with one pod per node (rank = completion index)."""

from __future__ import annotations

from typing import Any

from finetune_api.durations import duration_seconds
from finetune_api.exit_codes import NON_RETRYABLE
from finetune_api.pod_contract import CONTAINER
from finetune_api.resolved import ResolvedJob

from ..naming import KUEUE_PRIORITY_LABEL, KUEUE_QUEUE_LABEL, job_name, labels
from ..settings import OperatorSettings
from .pod import pod_template


def pod_failure_policy() -> dict[str, Any]:
    """Fail at once on errors a retry cannot fix; do not count disruptions (preemption, drain) against retries."""
    return {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": sorted(NON_RETRYABLE)},
            },
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]
    }


def job(job: ResolvedJob, settings: OperatorSettings) -> dict[str, Any]:
    spec = job.spec
    name = job.metadata.name
    nodes = spec.resources.nodes
    meta_labels = labels(name)
    queue = spec.queue_name
    if queue:
        meta_labels[KUEUE_QUEUE_LABEL] = queue
    priority = spec.scheduling.workload_priority_class if spec.scheduling else None
    if priority:
        meta_labels[KUEUE_PRIORITY_LABEL] = priority
    body: dict[str, Any] = {
        "backoffLimit": spec.retries,
        # Kueue admits a queued Job by unsuspending it, so queued Jobs start suspended.
        "suspend": spec.suspend or bool(queue),
        "podFailurePolicy": pod_failure_policy(),
        # A replacement pod starts only once the old one is gone: never two ranks with one index.
        "podReplacementPolicy": "Failed",
        "template": pod_template(job, settings),
    }
    if spec.max_runtime:
        body["activeDeadlineSeconds"] = duration_seconds(spec.max_runtime)
    if nodes > 1:
        body.update(completionMode="Indexed", completions=nodes, parallelism=nodes)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(name), "namespace": job.metadata.namespace, "labels": meta_labels},
        "spec": body,
    }
