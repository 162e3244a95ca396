"""One reconcile of a FineTuneJob: checks -> rendered objects applied -> status from what is observed.

Kept apart from kopf so it can be read (and called) as plain code; the handlers only route events here.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf
from pydantic import ValidationError

from finetune_api.spec.enums import FailureClass, Phase
from finetune_api.spec.job import FineTuneJob
from finetune_api.durations import duration_seconds
from finetune_api.validation.checks import run_checks
from finetune_api.validation.problems import Severity

from .events import NORMAL, WARNING
from .kube import KubeApi
from .metrics import OPERATOR_METRICS
from .naming import job_name
from .render import render
from .settings import OperatorSettings
from .status.conditions import conditions
from .status.observe import Observation, observe

log = logging.getLogger(__name__)
TERMINAL = (Phase.SUCCEEDED.value, Phase.FAILED.value)


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(body: dict[str, Any]) -> FineTuneJob:
    doc: dict[str, Any] = {k: body[k] for k in ("apiVersion", "kind", "spec") if k in body}
    meta = body["metadata"]
    doc["metadata"] = {
        "name": meta["name"],
        "namespace": meta.get("namespace"),
        "labels": dict(meta.get("labels") or {}) or None,
    }
    return FineTuneJob.model_validate(doc)


def preflight(body: dict[str, Any]) -> tuple[FineTuneJob | None, list[str]]:
    """The checks a schema cannot express, before anything is created (no pod, no GPU taken)."""
    try:
        job = parse(body)
    except ValidationError as exc:
        return None, [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)]
    errors = [p.render() for p in run_checks(job.spec) if p.severity == Severity.ERROR]
    return job, errors


def needs_reconcile(event_type: str | None, body: Mapping[str, Any]) -> bool:
    """Whether a FineTuneJob watch event calls for a reconcile (level-triggered; no bookkeeping on it).

    Yes for every object of the initial listing (event type None: the operator started, so converge
    everything and resync status) and for a spec this operator has not observed yet (new, or changed:
    metadata.generation moves only with the spec). No for deletions, finished jobs, and the events of
    status writes (ours and the trainer's progress), which are most of them.
    """
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    if event_type == "DELETED" or meta.get("deletionTimestamp") or status.get("phase") in TERMINAL:
        return False
    if event_type is None:
        return True
    return not status.get("jobName") or status.get("observedGeneration") != meta.get("generation")


def reject(api: KubeApi, body: dict[str, Any], problems: list[str]) -> None:
    meta = body["metadata"]
    message = "; ".join(problems)[:4000]
    obs = Observation(Phase.FAILED, str(FailureClass.INVALID_SPEC), message, FailureClass.INVALID_SPEC)
    status = {
        "phase": obs.phase.value,
        "observedGeneration": meta.get("generation"),
        "conditions": conditions(
            (body.get("status") or {}).get("conditions"), obs, meta.get("generation", 0), now(), validated=False
        ),
        "failure": {"reason": FailureClass.INVALID_SPEC.value, "message": message},
        "completionTime": now(),
    }
    api.patch_status(meta["namespace"], meta["name"], status)
    api.record_event(body, WARNING, "InvalidSpec", message)


@dataclass
class Snapshot:
    """What the status is computed from: the batch Job (None before it exists) and its pods."""

    job: dict[str, Any] | None
    pods: list[dict[str, Any]]

    @classmethod
    def read(cls, api: KubeApi, namespace: str, name: str) -> Snapshot:
        return cls(api.get_job(namespace, job_name(name)), api.trainer_pods(namespace, name))


def ensure(api: KubeApi, body: dict[str, Any], job: FineTuneJob, settings: OperatorSettings) -> Snapshot:
    """Create or converge every object the job needs; an unchanged spec changes nothing.

    Returns the Job as this left it, so the status sync that follows need not read it again.
    """
    namespace, name = job.metadata.namespace or "default", job.metadata.name
    # A status that names no Job yet means a first reconcile: create without a read first (a burst of new
    # FineTuneJobs is exactly when a round trip per job hurts). A Job that exists all the same (an
    # earlier reconcile whose status write never landed) answers 409 and is read then.
    named = bool((body.get("status") or {}).get("jobName"))
    existing = api.get_job(namespace, job_name(name)) if named else None
    rendered = render(job, settings)
    for obj in rendered.objects:
        kopf.adopt(obj, owner=cast(kopf.Body, body))
        if obj["kind"] != "Job":
            api.apply(obj)
    want = rendered.of_kind("Job")[0]
    if existing is None:
        created = api.create(want)
        if created is not None:
            # No Event of its own: the status sync that follows posts one for New -> Pending (JobCreated).
            return Snapshot(created, [])  # a Job created a moment ago has no pods yet; their events follow
        existing = api.get_job(namespace, job_name(name))
        if existing is None:  # deleted between the two calls (rare): report what is there now
            return Snapshot.read(api, namespace, name)
    # A Job's template is immutable; after creation only suspension follows the spec.
    suspend = bool(want["spec"]["suspend"])
    if bool((existing.get("spec") or {}).get("suspend")) != suspend and not _queued_unadmitted(job, existing):
        api.set_job_suspend(namespace, job_name(name), suspend)
        return Snapshot.read(api, namespace, name)  # changed under us: read it afresh
    return Snapshot(existing, api.trainer_pods(namespace, name))


def _queued_unadmitted(job: FineTuneJob, existing: dict[str, Any]) -> bool:
    """Kueue owns suspension of a queued Job until it admits it; never unsuspend it ourselves."""
    queued = bool(job.spec.scheduling and job.spec.scheduling.queue_name)
    return queued and not job.spec.suspend


def sync_status(api: KubeApi, body: dict[str, Any], seen: Snapshot) -> Observation:
    """Status from what was seen of the Job and its pods; patched only where it changed."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    spec = body.get("spec") or {}
    queued = bool((spec.get("scheduling") or {}).get("queueName"))
    obs = observe(seen.job, seen.pods, queued=queued)
    old = body.get("status") or {}
    status: dict[str, Any] = {
        "phase": obs.phase.value,
        "observedGeneration": meta.get("generation"),
        "jobName": job_name(name),
        "attempts": obs.attempts,
        "conditions": conditions(old.get("conditions"), obs, meta.get("generation", 0), now()),
    }
    if obs.start_time:
        status["startTime"] = obs.start_time
    if obs.phase.value in TERMINAL:
        status["completionTime"] = obs.completion_time or old.get("completionTime") or now()
    if obs.failure:
        status["failure"] = {"reason": obs.failure.value, "message": obs.message[:4000], "exitCode": obs.exit_code}
    if obs.phase == Phase.SUCCEEDED:
        progress = dict(old.get("progress") or {})
        progress.update(percent=100, summary=f"100% {progress.get('totalSteps', '')}".strip())
        status["progress"] = progress
    if old.get("phase") != obs.phase.value:
        OPERATOR_METRICS.transition(old.get("phase"), obs.phase.value)
        api.record_event(
            body,
            WARNING if obs.phase == Phase.FAILED else NORMAL,
            obs.reason,
            f"{old.get('phase') or 'New'} -> {obs.phase.value}: {obs.message}",
        )
    # Every pod and Job event lands here; most change nothing, and an unchanged status is not written.
    if any(old.get(key) != value for key, value in status.items()):
        api.patch_status(namespace, name, status)
    return obs


def expired(body: dict[str, Any]) -> bool:
    """Whether ttlAfterFinished has passed since the job finished."""
    ttl = (body.get("spec") or {}).get("ttlAfterFinished")
    status = body.get("status") or {}
    if not ttl or status.get("phase") not in TERMINAL or not status.get("completionTime"):
        return False
    finished = dt.datetime.fromisoformat(status["completionTime"])  # "...Z" or "...+00:00", both RFC 3339
    if finished.tzinfo is None:
        finished = finished.replace(tzinfo=dt.UTC)
    return dt.datetime.now(dt.UTC) >= finished + dt.timedelta(seconds=duration_seconds(ttl))
