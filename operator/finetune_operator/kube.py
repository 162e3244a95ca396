"""The few Kubernetes API calls the operator makes, in one place (the RBAC in the chart lists exactly these).

Requests go out and come back as plain JSON dicts. The client library's typed models cost milliseconds
of CPU per object to build and to turn back into dicts (a pod is hundreds of fields), and every caller
here wants the dict; at a burst of a thousand FineTuneJobs that was most of the operator's own CPU.
The client library still supplies the connection pool, TLS and credentials (tokens, refresh hooks).
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

from kubernetes import client, config

from finetune_api import EXPERIMENT_KIND, EXPERIMENT_PLURAL, GROUP, PLURAL, VERSION
from finetune_api.experiment.expand import EXPERIMENT_LABEL
from finetune_api.redact import redact, redact_tree

from .events import EventPoster
from .naming import JOB_LABEL
from .status.kueue import JOB_UID_LABEL, WORKLOAD_API

FIELD_MANAGER = "finetune-operator"
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # a JSON body is valid YAML
# The kinds the operator touches, by their REST collection name.
PLURALS = {
    "Pod": "pods",
    "Event": "events",
    "ConfigMap": "configmaps",
    "ServiceAccount": "serviceaccounts",
    "Service": "services",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "Job": "jobs",
    "Workload": "workloads",  # Kueue's, read only
    "FineTuneJob": PLURAL,
    EXPERIMENT_KIND: EXPERIMENT_PLURAL,
}


def collection(api_version: str, kind: str, namespace: str) -> str:
    """The REST path of a namespaced collection: /api/v1/... for the core group, /apis/<group>/<v>/... else."""
    root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{root}/namespaces/{quote(namespace, safe='')}/{PLURALS[kind]}"


def object_path(api_version: str, kind: str, namespace: str, name: str) -> str:
    return f"{collection(api_version, kind, namespace)}/{quote(name, safe='')}"


def _finetunejob(namespace: str, name: str) -> str:
    return object_path(f"{GROUP}/{VERSION}", "FineTuneJob", namespace, name)


def _experiment(namespace: str, name: str) -> str:
    return object_path(f"{GROUP}/{VERSION}", EXPERIMENT_KIND, namespace, name)


class KubeApi:
    def __init__(self, api_client: client.ApiClient | None = None, *, connections: int = 10) -> None:
        if api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                # Read KUBECONFIG now: the client library reads it once, at import time.
                config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
            configuration = client.Configuration.get_default_copy()
            # One kept-alive connection per thread that calls the API at once: beyond the pool's size,
            # urllib3 opens a connection per request and drops it after, a TLS handshake each time (measured:
            # hundreds per burst of new FineTuneJobs, on both the operator's and the API server's CPU).
            configuration.connection_pool_maxsize = connections
            api_client = client.ApiClient(configuration)
        self.api_client = api_client
        self.events = EventPoster(
            lambda event: self.request("POST", collection("v1", "Event", event["metadata"]["namespace"]), body=event)
        )

    def record_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """An Event about `obj`, posted in the background (see events.py)."""
        self.events.record(obj, type_, reason, redact(message))

    def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = JSON,
    ) -> Any:
        """One API call; the decoded JSON answer. Raises the client's ApiException (with .status) otherwise."""
        headers = {"Accept": JSON}
        if body is not None:
            headers["Content-Type"] = content_type
        method, url, headers, body, _ = self.api_client.param_serialize(
            method, path, query_params=query or [], header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        response = self.api_client.call_api(method, url, header_params=headers, body=body)
        data = response.read()
        if not 200 <= response.status <= 299:
            raise client.ApiException.from_response(http_resp=response, body=data.decode("utf-8", "replace"), data=None)
        return json.loads(data)

    def _get_or_none(self, path: str, *, cached: bool = False) -> dict[str, Any] | None:
        try:
            return dict(self.request("GET", path, query=[("resourceVersion", "0")] if cached else None))
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply: creating or converging to the rendered object is one idempotent call."""
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        return dict(self.request("PATCH", path, query=query, body=obj, content_type=APPLY_PATCH))

    def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Create the object; None when one of that name exists already (the caller converges it)."""
        meta = obj["metadata"]
        try:
            path = collection(obj["apiVersion"], obj["kind"], meta["namespace"])
            return dict(self.request("POST", path, query=[("fieldManager", FIELD_MANAGER)], body=obj))
        except client.ApiException as exc:
            if exc.status == 409:
                return None
            raise

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get_or_none(object_path("batch/v1", "Job", namespace, name))

    def set_job_suspend(self, namespace: str, name: str, suspend: bool) -> None:
        path = object_path("batch/v1", "Job", namespace, name)
        self.request("PATCH", path, body={"spec": {"suspend": suspend}}, content_type=MERGE_PATCH)

    def trainer_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        selector = [("labelSelector", f"{JOB_LABEL}={name}")]
        listing = self.request("GET", collection("v1", "Pod", namespace), query=selector)
        return list(listing["items"])

    def kueue_workload(self, namespace: str, job_uid: str) -> dict[str, Any] | None:
        """The Kueue Workload standing for the Job of this UID; None where there is none (yet), or no Kueue."""
        selector = [("labelSelector", f"{JOB_UID_LABEL}={job_uid}")]
        try:
            listing = self.request("GET", collection(WORKLOAD_API, "Workload", namespace), query=selector)
        except client.ApiException as exc:
            if exc.status in (403, 404):  # Kueue is not installed, or the chart's rule for it is not granted
                return None
            raise
        items = listing["items"]
        return dict(items[0]) if items else None

    def get_finetunejob(self, namespace: str, name: str, *, cached: bool = False) -> dict[str, Any] | None:
        """cached: from the API server's watch cache (resourceVersion=0) rather than a quorum read of etcd,
        which decodes the custom resource through its whole schema. Status syncs read this way: only this
        operator and the job's own trainer write a FineTuneJob's status, and a cache a moment behind our
        own last status write can at worst make a sync write that same status (and its Event) again."""
        return self._get_or_none(_finetunejob(namespace, name), cached=cached)

    def count_phases(self) -> dict[str, int]:
        """FineTuneJobs per phase, from one cluster-wide LIST."""
        listing = self.request("GET", f"/apis/{GROUP}/{VERSION}/{PLURAL}")
        counts: dict[str, int] = {}
        for item in listing["items"]:
            phase = (item.get("status") or {}).get("phase") or "Pending"
            counts[phase] = counts.get(phase, 0) + 1
        return counts

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.request(
            # Status carries the trainer's messages: a URL's credentials never reach it (nor etcd).
            "PATCH",
            f"{_finetunejob(namespace, name)}/status",
            body={"status": redact_tree(status)},
            content_type=MERGE_PATCH,
        )

    def delete_finetunejob(self, namespace: str, name: str) -> None:
        self.request("DELETE", _finetunejob(namespace, name), query=[("propagationPolicy", "Background")])

    def get_experiment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get_or_none(_experiment(namespace, name))

    def experiment_jobs(self, namespace: str, experiment: str) -> dict[str, dict[str, Any]]:
        """The experiment's FineTuneJobs by name: a quorum read, so a job created a moment ago is never missed
        (planning from a stale cache could start a variant beyond maxParallel)."""
        selector = [("labelSelector", f"{EXPERIMENT_LABEL}={experiment}")]
        listing = self.request("GET", collection(f"{GROUP}/{VERSION}", "FineTuneJob", namespace), query=selector)
        return {item["metadata"]["name"]: item for item in listing["items"]}

    def patch_experiment_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.request(
            # The rows carry the variants' failure messages: redacted as a FineTuneJob's own status is.
            "PATCH",
            f"{_experiment(namespace, name)}/status",
            body={"status": redact_tree(status)},
            content_type=MERGE_PATCH,
        )
