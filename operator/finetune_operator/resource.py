"""The operator's view of its own resource: a FineTuneJob as read from the API server, typed.

The spec is parsed by the spec model itself (reconcile.parse); this is the identity and the status,
so no handler walks `(body.get("status") or {}).get(...)` chains.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from finetune_api.v1alpha1.status import FineTuneJobStatus

log = logging.getLogger(__name__)


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
            status=_status(body.get("status"), meta.get("name")),
            body=body,
        )

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    @property
    def finished(self) -> bool:
        return self.status.phase is not None and self.status.phase.is_terminal


def _status(raw: Any, name: Any) -> FineTuneJobStatus:
    if not raw:
        return FineTuneJobStatus()
    try:
        return FineTuneJobStatus.model_validate(raw)
    except ValidationError as exc:
        # The API server validated it against the same schema, so this means a schema change between
        # versions; computing the status afresh beats wedging the job.
        log.warning("status of %s does not parse (%s); recomputing it", name, exc.errors(include_url=False)[:1])
        return FineTuneJobStatus()
