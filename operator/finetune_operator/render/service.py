"""The headless Service that gives each rank of a multi-node job a stable DNS name for the rendezvous."""

from __future__ import annotations

from typing import Any

from finetune_api.v1alpha1.job import FineTuneJob

from ..naming import JOB_LABEL, object_metadata, service_name
from ..settings import OperatorSettings


def headless_service(job: FineTuneJob, settings: OperatorSettings) -> dict[str, Any]:
    name = job.metadata.name
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_metadata(service_name(name), job.metadata.namespace, name),
        "spec": {
            "clusterIP": "None",
            "selector": {JOB_LABEL: name},
            # Ranks must resolve each other before they are Ready: readiness comes after the rendezvous.
            "publishNotReadyAddresses": True,
            "ports": [{"name": "rendezvous", "port": settings.rendezvous_port, "targetPort": settings.rendezvous_port}],
        },
    }
