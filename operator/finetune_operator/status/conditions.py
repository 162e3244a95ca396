"""Conditions per the Kubernetes API conventions: one per type, lastTransitionTime moves only on change."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from finetune_api.spec.enums import Phase
from finetune_api.spec.status import Condition

from .observe import Observation

# Which condition types are True in each phase.
TRUE_IN: dict[Phase, set[str]] = {
    Phase.PENDING: {"Validated"},
    Phase.INITIALIZING: {"Validated", "Initialized"},
    Phase.RUNNING: {"Validated", "Initialized", "Running"},
    Phase.SUCCEEDED: {"Validated", "Initialized", "Complete"},
    Phase.FAILED: {"Failed"},
    Phase.SUSPENDED: {"Validated", "Suspended"},
}
TYPES = ("Validated", "Initialized", "Running", "Complete", "Failed", "Suspended")


def conditions(
    previous: list[Condition] | None, obs: Observation, generation: int, now: dt.datetime, validated: bool = True
) -> list[Condition]:
    old = {c.type: c for c in previous or []}
    true = set(TRUE_IN[obs.phase])
    if obs.phase == Phase.FAILED and validated:
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
    return out
