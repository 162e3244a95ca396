"""The operator's view of its own resources: a FineTuneJob (or an experiment's status) as read, typed.

The spec is parsed by the spec model itself (reconcile.parse); this is the identity and the status,
so no handler walks `(body.get("status") or {}).get(...)` chains.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from finetune_api.v1alpha1.experiment_status import FineTuneExperimentStatus
from finetune_api.v1alpha1.status import FineTuneJobStatus

log = logging.getLogger(__name__)
S = TypeVar("S", FineTuneJobStatus, FineTuneExperimentStatus)


@dataclass(frozen=True)
class Observed:
    namespace: str
    name: str
    generation: int
    deleting: bool
    status: FineTuneJobStatus
    body: Mapping[str, Any]  # the object as read: owner references and Events need its identity

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Observed:
        meta = body.get("metadata") or {}
        return cls(
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta.get("name", "")),
            generation=int(meta.get("generation") or 0),
            deleting=bool(meta.get("deletionTimestamp")),
            status=parse_status(body.get("status"), FineTuneJobStatus, meta.get("name")),
            body=body,
        )

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    @property
    def finished(self) -> bool:
        return self.status.phase is not None and self.status.phase.is_terminal


def parse_status(raw: Any, model: type[S], name: Any) -> S:
    """The status as read, typed; an empty one when it is unset or does not parse."""
    if not raw:
        return model()
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        # The API server validated it against the same schema, so this means a schema change between
        # versions; computing the status afresh beats wedging the job.
        log.warning("status of %s does not parse (%s); recomputing it", name, exc.errors(include_url=False)[:1])
        return model()
