"""Conditions per the Kubernetes API conventions: one per type, lastTransitionTime moves only on change."""

from __future__ import annotations

from typing import Any

from finetune_api.spec.enums import Phase

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
    previous: list[dict[str, Any]] | None, obs: Observation, generation: int, now: str, validated: bool = True
) -> list[dict[str, Any]]:
    old = {c["type"]: c for c in previous or []}
    true = set(TRUE_IN[obs.phase])
    if obs.phase == Phase.FAILED and validated:
        true.add("Validated")
    out = []
    for kind in TYPES:
        status = "True" if kind in true else "False"
        prior = old.get(kind)
        changed = prior is None or prior.get("status") != status
        out.append(
            {
                "type": kind,
                "status": status,
                "reason": obs.reason if status == "True" or kind == "Validated" else "NotApplicable",
                "message": obs.message if status == "True" else "",
                "lastTransitionTime": now if changed else prior["lastTransitionTime"],  # type: ignore[index]
                "observedGeneration": generation,
            }
        )
    return out
