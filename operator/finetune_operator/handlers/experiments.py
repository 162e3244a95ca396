"""FineTuneExperiment event routing; the decisions live in finetune_operator.experiment."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from finetune_api import EXPERIMENT_PLURAL, GROUP, PLURAL, VERSION
from finetune_api.experiment.expand import EXPERIMENT_LABEL

from ..experiment.plan import TERMINAL
from ..experiment.reconcile import reconcile as reconcile_experiment
from .runtime import Key, Runtime, current

LOG = logging.getLogger("finetune_operator")
_FINISHED = tuple(p.value for p in TERMINAL)


def needs_experiment_reconcile(event_type: str | None, body: Mapping[str, Any]) -> bool:
    """The initial listing and new or changed specs; not our own status writes (variants' events cover those)."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    if event_type == "DELETED" or meta.get("deletionTimestamp") or status.get("phase") in _FINISHED:
        return False
    return event_type is None or status.get("observedGeneration") != meta.get("generation")


@kopf.on.event(GROUP, VERSION, EXPERIMENT_PLURAL)
async def experiment_changed(type: str | None, body: kopf.Body, **_: Any) -> None:
    if needs_experiment_reconcile(type, body):
        current().experiments.add((body["metadata"]["namespace"], body["metadata"]["name"]))


@kopf.on.event(GROUP, VERSION, PLURAL, labels={EXPERIMENT_LABEL: kopf.PRESENT})
@kopf.on.event("batch", "v1", "jobs", labels={EXPERIMENT_LABEL: kopf.PRESENT})
async def variant_changed(body: kopf.Body, **_: Any) -> None:
    # A variant's FineTuneJob moved (a slot may be free, a row may change), or the report step did.
    current().experiments.add((body["metadata"]["namespace"], body["metadata"]["labels"][EXPERIMENT_LABEL]))


def reconcile(runtime: Runtime, key: Key) -> None:
    body = runtime.api.get_experiment(*key)
    if body is None or (body.get("status") or {}).get("phase") in _FINISHED:
        return
    try:
        phase = reconcile_experiment(runtime.api, body, runtime.settings)
    except Exception as exc:
        runtime.report_failure(body, exc)
        raise
    LOG.info("[%s/%s] experiment reconciled: %s", *key, phase.value)
