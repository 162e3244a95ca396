"""Names and labels derived from a FineTuneJob, so every reconcile computes the same objects (idempotence)."""

from __future__ import annotations

from typing import Any

JOB_LABEL = "finetune.dev/job"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY = {"app.kubernetes.io/managed-by": "finetune-operator", "app.kubernetes.io/name": "finetune-trainer"}
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"


def config_map_name(job: str) -> str:
    return f"{job}-config"


def job_name(job: str) -> str:
    return job


def service_name(job: str) -> str:
    return job


def trainer_service_account(job: str) -> str:
    return f"{job}-trainer"


def labels(job: str) -> dict[str, str]:
    return {**MANAGED_BY, JOB_LABEL: job}


def object_metadata(object_name: str, namespace: str | None, job: str) -> dict[str, Any]:
    """Metadata of an object rendered for a FineTuneJob: its name, the job's namespace, our labels."""
    return {"name": object_name, "namespace": namespace, "labels": labels(job)}
