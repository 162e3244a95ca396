"""The ConfigMap holding the trainer's config: the FineTuneJob, resolved (finetune_api.resolve), as it runs."""

from __future__ import annotations

from typing import Any

import yaml

from finetune_api.pod_contract import CONFIG_KEY
from finetune_api.resolved import ResolvedJob

from ..naming import config_map_name, object_metadata


def trainer_config(job: ResolvedJob) -> str:
    """The resolved job (every default filled, status left out); the trainer validates it again."""
    body = job.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"status"})
    body["metadata"] = {"name": job.metadata.name, "namespace": job.metadata.namespace}
    return yaml.safe_dump(body, sort_keys=False)


def config_map(job: ResolvedJob) -> dict[str, Any]:
    name = job.metadata.name
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_metadata(config_map_name(name), job.metadata.namespace, name),
        "data": {CONFIG_KEY: trainer_config(job)},
    }
