"""The trainer's identity and its single grant: patching the status of its own FineTuneJob.

Why the trainer writes progress itself instead of the operator scraping it: the operator would need
network reach into every training pod and would turn N jobs into N scrape loops; a status write
limited by resourceName to one object is the smaller privilege and works without pod networking.
"""

from __future__ import annotations

from typing import Any

from finetune_api import GROUP, PLURAL
from finetune_api.v1alpha1.job import FineTuneJob

from ..naming import object_metadata, trainer_service_account


def service_account(job: FineTuneJob) -> dict[str, Any]:
    name = job.metadata.name
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": object_metadata(trainer_service_account(name), job.metadata.namespace, name),
    }


def status_role(job: FineTuneJob) -> dict[str, Any]:
    name = job.metadata.name
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": object_metadata(trainer_service_account(name), job.metadata.namespace, name),
        "rules": [
            {
                "apiGroups": [GROUP],
                "resources": [f"{PLURAL}/status"],
                "resourceNames": [name],
                "verbs": ["get", "patch"],
            }
        ],
    }


def status_role_binding(job: FineTuneJob) -> dict[str, Any]:
    name = job.metadata.name
    account = job.spec.service_account_name or trainer_service_account(name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": object_metadata(trainer_service_account(name), job.metadata.namespace, name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": trainer_service_account(name)},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": job.metadata.namespace}],
    }
