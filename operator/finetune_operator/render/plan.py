"""Everything one FineTuneJob needs, in the order it must be created."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from finetune_api.resolved import ResolvedJob

from ..settings import OperatorSettings
from .config import config_map
from .job import job as render_job
from .rbac import service_account, status_role, status_role_binding
from .service import headless_service


@dataclass(frozen=True)
class RenderedObjects:
    objects: tuple[dict[str, Any], ...]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]


def render(job: ResolvedJob, settings: OperatorSettings) -> RenderedObjects:
    """Pure: the resolved job (finetune_api.resolve, with the settings' pod defaults) as objects."""
    objects: list[dict[str, Any]] = [config_map(job)]
    if not job.spec.service_account_name:
        objects.append(service_account(job))
    objects += [status_role(job), status_role_binding(job)]
    if job.spec.resources.nodes > 1:
        objects.append(headless_service(job, settings))
    objects.append(render_job(job, settings))  # last: its pods need everything above
    return RenderedObjects(tuple(objects))
