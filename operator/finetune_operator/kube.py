"""The few Kubernetes API calls the operator makes, in one place (the RBAC in the chart lists exactly these)."""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

from kubernetes import client, config
from kubernetes.dynamic import DynamicClient

from finetune_api import GROUP, PLURAL, VERSION

from .naming import JOB_LABEL

FIELD_MANAGER = "finetune-operator"


class KubeApi:
    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        if api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                # Read KUBECONFIG now: the client library reads it once, at import time.
                config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
            api_client = client.ApiClient()
        self.api_client = api_client

    @cached_property
    def dynamic(self) -> DynamicClient:
        return DynamicClient(self.api_client)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply: creating or converging to the rendered object is one idempotent call."""
        resource = self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        result = resource.server_side_apply(
            body=obj, name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER, force_conflicts=True,
        )  # fmt: skip
        return dict(result.to_dict())

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            job = client.BatchV1Api(self.api_client).read_namespaced_job(name, namespace)
            return dict(self.api_client.sanitize_for_serialization(job))
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def set_job_suspend(self, namespace: str, name: str, suspend: bool) -> None:
        client.BatchV1Api(self.api_client).patch_namespaced_job(name, namespace, {"spec": {"suspend": suspend}})

    def trainer_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        pods = client.CoreV1Api(self.api_client).list_namespaced_pod(namespace, label_selector=f"{JOB_LABEL}={name}")
        return [self.api_client.sanitize_for_serialization(p) for p in pods.items]

    def get_finetunejob(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj: Any = client.CustomObjectsApi(self.api_client).get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            )
            return obj
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def count_phases(self) -> dict[str, int]:
        """FineTuneJobs per phase, from one cluster-wide LIST."""
        listing: Any = client.CustomObjectsApi(self.api_client).list_cluster_custom_object(GROUP, VERSION, PLURAL)
        items = listing["items"]
        counts: dict[str, int] = {}
        for item in items:
            phase = (item.get("status") or {}).get("phase") or "Pending"
            counts[phase] = counts.get(phase, 0) + 1
        return counts

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        client.CustomObjectsApi(self.api_client).patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": status}
        )

    def delete_finetunejob(self, namespace: str, name: str) -> None:
        client.CustomObjectsApi(self.api_client).delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Background"
        )
