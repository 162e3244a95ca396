"""FineTuneExperiment event routing; the decisions live in finetune_operator.experiment."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from finetune_api import EXPERIMENT_PLURAL, GROUP, PLURAL, VERSION
from finetune_api.experiment.expand import EXPERIMENT_LABEL
from finetune_api.v1alpha1.experiment_status import FineTuneExperimentStatus

from ..experiment.plan import TERMINAL
from ..experiment.reconcile import reconcile as reconcile_experiment
from ..resource import parse_status
from .runtime import Key, Runtime, current

LOG = logging.getLogger("finetune_operator")


def needs_experiment_reconcile(event_type: str | None, body: Mapping[str, Any]) -> bool:
    """The initial listing and new or changed specs; not our own status writes (variants' events cover those)."""
    meta, status = body.get("metadata") or {}, _status(body)
    if event_type == "DELETED" or meta.get("deletionTimestamp") or status.phase in TERMINAL:
        return False
    return event_type is None or status.observed_generation != meta.get("generation")


def _status(body: Mapping[str, Any]) -> FineTuneExperimentStatus:
    return parse_status(body.get("status"), FineTuneExperimentStatus, (body.get("metadata") or {}).get("name"))


def _finished(body: Mapping[str, Any]) -> bool:
    return _status(body).phase in TERMINAL


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
    if body is None or _finished(body):
        return
    try:
        phase = reconcile_experiment(runtime.api, body, runtime.settings)
    except Exception as exc:
        runtime.report_failure(body, exc)
        raise
    LOG.info("[%s/%s] experiment reconciled: %s", *key, phase.value)
