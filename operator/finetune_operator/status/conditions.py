"""Conditions per the Kubernetes API conventions: one per type, lastTransitionTime moves only on change."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from finetune_api.v1alpha1.enums import Phase
from finetune_api.v1alpha1.status import Condition, FineTuneJobStatus

from .observe import Observation

# Which condition types are True in each phase.
TRUE_IN: dict[Phase, set[str]] = {
    Phase.PENDING: {"Validated"},
    Phase.QUEUED: {"Validated", "Queued"},
    Phase.PREEMPTED: {"Validated", "Preempted"},
    Phase.INITIALIZING: {"Validated", "Initialized"},
    Phase.RUNNING: {"Validated", "Initialized", "Running"},
    Phase.SUCCEEDED: {"Validated", "Initialized", "Complete"},
    Phase.FAILED: {"Failed"},
    Phase.SUSPENDED: {"Validated", "Suspended"},
}
TYPES = ("Validated", "Queued", "Preempted", "Initialized", "Running", "Complete", "Failed", "Suspended")
# From what the trainer reports of its dependencies (status.storage, status.tracking), while the trainer runs;
# with the reason of the Event that says it holds no more.
TRAINER_TYPES = {
    "StorageRetrying": "StorageRecovered",
    "CheckpointsFailing": "CheckpointsSaved",
    "TrackingFailing": "TrackingRecovered",
}


def conditions(
    previous: list[Condition] | None,
    obs: Observation,
    generation: int,
    now: dt.datetime,
    reported: FineTuneJobStatus | None = None,
) -> list[Condition]:
    """`reported`: the status as it stands, for the trainer's words on its store and tracking server."""
    old = {c.type: c for c in previous or []}
    true = set(TRUE_IN[obs.phase])
    if obs.phase == Phase.FAILED and obs.validated:
        true.add("Validated")
    out = []
    for kind in TYPES:
        status: Literal["True", "False"] = "True" if kind in true else "False"
        prior = old.get(kind)
        out.append(
            Condition(
                type=kind,
                status=status,
                reason=obs.reason if status == "True" or kind == "Validated" else "NotApplicable",
                message=obs.message if status == "True" else "",
                last_transition_time=prior.last_transition_time if prior and prior.status == status else now,
                observed_generation=generation,
            )
        )
    said = trainer_messages(reported) if obs.phase in (Phase.INITIALIZING, Phase.RUNNING) else {}
    for kind in TRAINER_TYPES:
        message = said.get(kind)
        prior = old.get(kind)
        status = "True" if message else "False"
        out.append(
            Condition(
                type=kind,
                status=status,
                reason=kind if message else "NotApplicable",
                message=message or "",
                last_transition_time=prior.last_transition_time if prior and prior.status == status else now,
                observed_generation=generation,
            )
        )
    return out


def trainer_messages(status: FineTuneJobStatus | None) -> dict[str, str]:
    """The trainer-reported conditions that hold, by type, with the trainer's words."""
    if status is None:
        return {}
    storage, tracking = status.storage, status.tracking
    said = {
        "StorageRetrying": storage.retrying if storage else None,
        "CheckpointsFailing": storage.checkpoints_failing if storage else None,
        "TrackingFailing": tracking.failing if tracking else None,
    }
    return {kind: message for kind, message in said.items() if message}


def trainer_conditions_stale(status: FineTuneJobStatus) -> bool:
    """Whether the trainer's report has moved on from the conditions that show it."""
    shown = {c.type: c.message for c in status.conditions or [] if c.type in TRAINER_TYPES and c.status == "True"}
    return shown != trainer_messages(status)
