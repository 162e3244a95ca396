"""What the trainer Job and its pods say about a FineTuneJob: phase, failure class, times, attempts.

Status comes from observed state only (the Job's real conditions and the pods' terminated states),
never from what the operator intended.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, TypedDict

from pydantic import ValidationError

from finetune_api.exit_codes import CLASS_OF_EXIT
from finetune_api.pod_contract import CONTAINER, TerminationMessage
from finetune_api.v1alpha1.enums import FailureClass, Phase

from .kueue import NOT_SEEN, KueueView

PERMANENT_IMAGE_ERRORS = {"InvalidImageName", "ErrImageNeverPull"}
IMAGE_ERRORS = PERMANENT_IMAGE_ERRORS | {"ErrImagePull", "ImagePullBackOff"}


@dataclass(frozen=True)
class Observation:
    phase: Phase
    reason: str
    message: str = ""
    failure: FailureClass | None = None
    exit_code: int | None = None
    attempts: int = 0
    start_time: str | None = None
    completion_time: str | None = None
    validated: bool = True  # False for a spec refused before any object was made


class _Times(TypedDict):
    start_time: str | None
    completion_time: str | None


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def _terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == CONTAINER and "terminated" in (status.get("state") or {}):
            return dict(status["state"]["terminated"])
    return None


def _waiting_reason(pod: dict[str, Any]) -> tuple[str, str] | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting")
        if waiting:
            return str(waiting.get("reason", "")), str(waiting.get("message", ""))
    return None


def _unschedulable(pod: dict[str, Any]) -> str | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            return str(cond.get("message", ""))
    return None


def _memory_limit(pod: dict[str, Any]) -> str | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        if container.get("name") == CONTAINER:
            limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
            return str(limit) if limit else None
    return None


def _oom_message(pod: dict[str, Any], said: str) -> str:
    """What to change, first; then the end of what the trainer said (the kernel gave it no chance to say more)."""
    limit = _memory_limit(pod)
    message = (
        f"the trainer was killed at its memory limit{f' of {limit}' if limit else ''} (OOMKilled): raise "
        "spec.resources.memory, or lower spec.training.batchSize or spec.dataset.maxLength. The longest batch runs "
        "first, so a limit that is too low shows at the first step"
    )
    tail = [line.strip() for line in said.splitlines() if line.strip()][-3:]
    return message + (". Its last log lines: " + " | ".join(tail) if tail else "")


def failure_of(pod: dict[str, Any]) -> tuple[FailureClass, str, int | None]:
    """The failure class of a failed trainer pod, from its exit code and termination message."""
    term = _terminated(pod) or {}
    code = term.get("exitCode")
    message = str(term.get("message") or "")
    # FallbackToLogsOnError: without a TerminationMessage the kubelet puts the log's tail here.
    with contextlib.suppress(ValidationError):
        message = TerminationMessage.model_validate_json(message).message
    if term.get("reason") == "OOMKilled":
        return FailureClass.OUT_OF_MEMORY, _oom_message(pod, message), code
    if isinstance(code, int) and code in CLASS_OF_EXIT:
        return CLASS_OF_EXIT[code], message, code
    return FailureClass.INTERNAL_ERROR, message or f"the trainer exited with code {code}", code


def _newest_failed(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
    return max(failed, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp", ""), default=None)


def _queued(kueue: KueueView, pods: list[dict[str, Any]], attempts: int) -> Observation:
    """A Job Kueue holds: preempted while its pods still stop (saving their checkpoint), else queued, with
    Kueue's own reason (its Workload's) where it gave one."""
    stopping = [p for p in pods if (p.get("status") or {}).get("phase") in ("Pending", "Running")]
    if kueue.preempted and stopping:
        message = f"{kueue.preempted}; the trainer saves a checkpoint and the job queues again"
        return Observation(Phase.PREEMPTED, "Preempted", message, attempts=attempts)
    waiting = kueue.waiting or "waiting for Kueue to admit the Job"
    if kueue.preempted:  # its pods are gone (the sync may not have seen them stop): queued again, and why
        return Observation(Phase.QUEUED, "Preempted", f"preempted ({kueue.preempted}); {waiting}", attempts=attempts)
    return Observation(Phase.QUEUED, "Queued", waiting, attempts=attempts)


def observe(
    job: dict[str, Any] | None, pods: list[dict[str, Any]], queued: bool = False, kueue: KueueView = NOT_SEEN
) -> Observation:
    if job is None:
        return Observation(Phase.PENDING, "JobNotCreated", "the trainer Job is being created")
    status = job.get("status") or {}
    failed, succeeded, active = (
        int(status.get("failed", 0)),
        int(status.get("succeeded", 0)),
        int(status.get("active", 0)),
    )
    attempts = failed + (1 if active or succeeded else 0)
    times: _Times = {"start_time": status.get("startTime"), "completion_time": status.get("completionTime")}

    if _condition(job, "Complete"):
        return Observation(
            Phase.SUCCEEDED,
            "TrainerSucceeded",
            "the trainer finished and published its output",
            attempts=attempts,
            **times,
        )
    failed_cond = _condition(job, "Failed")
    if failed_cond:
        finished = failed_cond.get("lastTransitionTime")
        if failed_cond.get("reason") == "DeadlineExceeded":
            return Observation(
                Phase.FAILED, "DeadlineExceeded", "spec.maxRuntime was reached", FailureClass.DEADLINE_EXCEEDED,
                attempts=attempts, start_time=times["start_time"], completion_time=finished,
            )  # fmt: skip
        pod = _newest_failed(pods)
        cls, message, code = (
            failure_of(pod) if pod else (FailureClass.INTERNAL_ERROR, str(failed_cond.get("message", "")), None)
        )
        return Observation(Phase.FAILED, str(cls), message, cls, code, attempts, times["start_time"], finished)
    if _condition(job, "Suspended") or (job.get("spec") or {}).get("suspend"):
        if queued and (not status.get("startTime") or kueue.preempted):
            return _queued(kueue, pods, attempts)
        return Observation(
            Phase.SUSPENDED, "Suspended", "spec.suspend is true; no trainer pods run", attempts=attempts, **times
        )

    live = [p for p in pods if (p.get("status") or {}).get("phase") in ("Pending", "Running")]
    for pod in live:
        waiting = _waiting_reason(pod)
        if waiting and waiting[0] in PERMANENT_IMAGE_ERRORS:
            return Observation(
                Phase.FAILED,
                str(FailureClass.IMAGE_PULL_ERROR),
                waiting[1] or waiting[0],
                FailureClass.IMAGE_PULL_ERROR,
                attempts=attempts,
                **times,
            )
        if waiting and waiting[0] in IMAGE_ERRORS:
            return Observation(
                Phase.PENDING, str(FailureClass.IMAGE_PULL_ERROR), waiting[1] or waiting[0], attempts=attempts, **times
            )
        unschedulable = _unschedulable(pod)
        if unschedulable is not None:
            return Observation(
                Phase.PENDING, str(FailureClass.UNSCHEDULABLE), unschedulable, attempts=attempts, **times
            )
    if any((p.get("status") or {}).get("phase") == "Running" for p in live):
        return Observation(Phase.RUNNING, "TrainerRunning", "the trainer is running", attempts=attempts, **times)
    if active and not live and any((p.get("status") or {}).get("phase") == "Succeeded" for p in pods):
        # A real kubelet reports the pod Succeeded a moment before the Job controller counts it
        # and marks the Job Complete: the trainer is done, nothing is starting.
        return Observation(
            Phase.RUNNING, "TrainerFinished", "the trainer exited; the Job is completing", attempts=attempts, **times
        )
    if live or active:
        return Observation(Phase.INITIALIZING, "PodStarting", "trainer pods are starting", attempts=attempts, **times)
    return Observation(Phase.PENDING, "JobCreated", "waiting for the trainer pods", attempts=attempts, **times)
