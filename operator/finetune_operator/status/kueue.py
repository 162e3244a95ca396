"""What Kueue says of a queued FineTuneJob's Job, read from its Workload (kueue.x-k8s.io): why it waits, and
whether (and how often) it was preempted; and what that cost it (status.queue). Pure functions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from finetune_api.v1alpha1.enums import Phase
from finetune_api.v1alpha1.status import FineTuneJobStatus, QueueStatus

WORKLOAD_API = "kueue.x-k8s.io/v1beta2"
JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"  # Kueue labels each Workload with the UID of the Job it stands for
PREEMPTED = "Preempted"  # the Evicted condition's reason, and the eviction count's, when Kueue preempted it


@dataclass(frozen=True)
class KueueView:
    waiting: str  # why it is not admitted (the QuotaReserved condition's message), or ""
    preempted: str  # the Evicted condition's message while that eviction is in force, or ""
    preemptions: int  # how often Kueue preempted it so far (schedulingStats.evictions)
    admitted: bool


NOT_SEEN = KueueView("", "", 0, False)


def _condition(workload: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (workload.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def kueue_view(workload: dict[str, Any] | None) -> KueueView:
    if not workload:
        return NOT_SEEN
    reserved = _condition(workload, "QuotaReserved")
    evicted = _condition(workload, "Evicted")
    admitted = _condition(workload, "Admitted").get("status") == "True"
    stats = ((workload.get("status") or {}).get("schedulingStats") or {}).get("evictions") or []
    preemptions = sum(int(e.get("count", 0)) for e in stats if e.get("reason") == PREEMPTED)
    in_force = evicted.get("status") == "True" and evicted.get("reason") == PREEMPTED
    waiting = str(reserved.get("message", "")) if reserved.get("status") == "False" else ""
    return KueueView(waiting, str(evicted.get("message", "")) if in_force else "", preemptions, admitted)


WAITING = (Phase.QUEUED, Phase.PREEMPTED)


def queue_status(
    before: FineTuneJobStatus, queue: str, phase: Phase, kueue: KueueView, now: dt.datetime
) -> tuple[QueueStatus, float | None]:
    """The job's queue status after this observation (`before`: the status last written), and the wait that
    just ended (admitted now), if one did.

    A wait runs from the first sync that saw the job waiting to the first that saw it admitted: the timer of
    handlers/jobs.py syncs a waiting job every few seconds, so either end is late by at most that beat."""
    old, was = before.queue or QueueStatus(name=queue), before.phase
    update: dict[str, Any] = {"preemptions": max(old.preemptions, kueue.preemptions)}
    waiting, waited = phase in WAITING, None
    if waiting and was not in WAITING:
        update["waiting_since"] = now
    elif not waiting and was in WAITING and old.waiting_since is not None:
        waited = max((now - _aware(old.waiting_since)).total_seconds(), 0.0)
        update["queued_seconds"] = round(old.queued_seconds + waited, 1)
    return old.model_copy(update=update), waited


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
