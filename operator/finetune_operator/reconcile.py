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

from finetune_api.durations import duration_seconds
from finetune_api.pod_contract import Owner, owned_part, published_output, status_patch
from finetune_api.resolve import PodDefaults, resolve_job
from finetune_api.resolved import ResolvedJob
from finetune_api.v1alpha1.enums import FailureClass, Phase
from finetune_api.v1alpha1.job import FineTuneJob
from finetune_api.v1alpha1.status import Condition, Failure, FineTuneJobStatus
from finetune_api.validation.checks import run_checks
from finetune_api.validation.problems import Severity

from .events import NORMAL, WARNING
from .kube import KubeApi
from .metrics import OPERATOR_METRICS
from .naming import job_name
from .render import render
from .resource import Observed
from .settings import OperatorSettings
from .status.conditions import TRAINER_TYPES, conditions, trainer_conditions_stale
from .status.kueue import NOT_SEEN, KueueView, kueue_view, queue_status
from .status.observe import Observation, observe

log = logging.getLogger(__name__)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def parse(body: Mapping[str, Any]) -> FineTuneJob:
    doc: dict[str, Any] = {k: body[k] for k in ("apiVersion", "kind", "spec") if k in body}
    meta = body["metadata"]
    doc["metadata"] = {
        "name": meta["name"],
        "namespace": meta.get("namespace"),
        "labels": dict(meta.get("labels") or {}) or None,
    }
    return FineTuneJob.model_validate(doc)


def preflight(body: Mapping[str, Any], pod: PodDefaults) -> tuple[ResolvedJob | None, list[str]]:
    """The checks a schema cannot express, before anything is created (no pod, no GPU taken); then the
    job resolved, once for this reconcile: everything after reads it, and the trainer's ConfigMap shows it."""
    try:
        job = parse(body)
    except ValidationError as exc:
        return None, _messages(exc)
    errors = [p.render() for p in run_checks(job.spec) if p.severity == Severity.ERROR]
    if errors:
        return None, errors
    try:
        return resolve_job(job, pod=pod), []
    except ValidationError as exc:
        return None, _messages(exc)


def warn_once(api: KubeApi, obj: Observed, job: FineTuneJob) -> None:
    """The spec's warnings (a LoRA rank vLLM pads, remote code allowed, ...) as Warning Events, at the first
    reconcile only: `kubectl describe ftj` shows what `finetune validate` would have said."""
    if obj.status.job_name:
        return
    for problem in spec_warnings(job):
        api.record_event(dict(obj.body), WARNING, "SpecWarning", problem)


def spec_warnings(job: FineTuneJob) -> list[str]:
    return [p.render() for p in run_checks(job.spec) if p.severity == Severity.WARNING]


def _messages(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)]


def needs_reconcile(event_type: str | None, body: Mapping[str, Any]) -> bool:
    """Whether a FineTuneJob watch event calls for a reconcile (level-triggered; no bookkeeping on it).

    Yes for every object of the initial listing (event type None: the operator started, so converge
    everything and resync status) and for a spec this operator has not observed yet (new, or changed:
    metadata.generation moves only with the spec). No for deletions, finished jobs, and the events of
    status writes (ours and the trainer's progress), which are most of them.
    """
    obj = Observed.of(body)
    if event_type == "DELETED" or obj.deleting or obj.finished:
        return False
    if event_type is None:
        return True
    return not obj.status.job_name or obj.status.observed_generation != obj.generation


def needs_status_sync(event_type: str | None, body: Mapping[str, Any]) -> bool:
    """Yes for a status write of the trainer's that the conditions do not show yet (its store or tracking server
    failing or recovered): a status sync turns it into conditions and Events, as a pod or Job event would."""
    obj = Observed.of(body)
    if event_type == "DELETED" or obj.deleting or obj.finished:
        return False
    return trainer_conditions_stale(obj.status)


def reject(api: KubeApi, obj: Observed, problems: list[str]) -> None:
    message = "; ".join(problems)[:4000]
    obs = Observation(Phase.FAILED, str(FailureClass.INVALID_SPEC), message, FailureClass.INVALID_SPEC, validated=False)
    status = FineTuneJobStatus(
        phase=obs.phase,
        observed_generation=obj.generation,
        conditions=conditions(obj.status.conditions, obs, obj.generation, now()),
        failure=Failure(reason=FailureClass.INVALID_SPEC, message=message),
        completion_time=now(),
    )
    api.patch_status(obj.namespace, obj.name, status_patch(status, Owner.OPERATOR))
    api.record_event(dict(obj.body), WARNING, "InvalidSpec", message)


@dataclass
class Snapshot:
    """What the status is computed from: the batch Job (None before it exists), its pods, and for a queued
    Job what Kueue says of it (its Workload)."""

    job: dict[str, Any] | None
    pods: list[dict[str, Any]]
    kueue: KueueView = NOT_SEEN

    @classmethod
    def read(cls, api: KubeApi, namespace: str, name: str, queued: bool = False) -> Snapshot:
        return cls.of(api, namespace, name, api.get_job(namespace, job_name(name)), queued)

    @classmethod
    def of(cls, api: KubeApi, namespace: str, name: str, job: dict[str, Any] | None, queued: bool) -> Snapshot:
        """Around a Job already read: its pods, and its Workload when it is queued."""
        uid = (job or {}).get("metadata", {}).get("uid")
        view = kueue_view(api.kueue_workload(namespace, uid)) if queued and uid else NOT_SEEN
        return cls(job, api.trainer_pods(namespace, name), view)


def ensure(api: KubeApi, obj: Observed, job: ResolvedJob, settings: OperatorSettings) -> Snapshot:
    """Create or converge every object the job needs; an unchanged spec changes nothing.

    Returns the Job as this left it, so the status sync that follows need not read it again.
    """
    namespace, name = job.metadata.namespace or "default", job.metadata.name
    # A status that names no Job yet means a first reconcile: create without a read first (a burst of new
    # FineTuneJobs is exactly when a round trip per job hurts). A Job that exists all the same (an
    # earlier reconcile whose status write never landed) answers 409 and is read then.
    existing = api.get_job(namespace, job_name(name)) if obj.status.job_name else None
    rendered = render(job, settings)
    queued = job.spec.queue_name is not None
    for child in rendered.objects:
        kopf.adopt(child, owner=cast(kopf.Body, obj.body))
        if child["kind"] != "Job":
            api.apply(child)
    want = rendered.of_kind("Job")[0]
    if existing is None:
        created = api.create(want)
        if created is not None:
            # No Event of its own: the status sync that follows posts one for New -> Pending (JobCreated).
            return Snapshot(created, [])  # a Job created a moment ago has no pods yet; their events follow
        existing = api.get_job(namespace, job_name(name))
        if existing is None:  # deleted between the two calls (rare): report what is there now
            return Snapshot.read(api, namespace, name, queued)
    # A Job's template is immutable; after creation only suspension follows the spec.
    suspend = bool(want["spec"]["suspend"])
    if bool((existing.get("spec") or {}).get("suspend")) != suspend and not _queued_unadmitted(job):
        api.set_job_suspend(namespace, job_name(name), suspend)
        return Snapshot.read(api, namespace, name, queued)  # changed under us: read it afresh
    return Snapshot.of(api, namespace, name, existing, queued)


def _queued_unadmitted(job: FineTuneJob) -> bool:
    """Kueue owns suspension of a queued Job until it admits it; never unsuspend it ourselves."""
    return job.spec.queue_name is not None and not job.spec.suspend


def sync_status(api: KubeApi, obj: Observed, job: FineTuneJob, seen: Snapshot) -> Observation:
    """Status from what was seen of the Job and its pods; patched only where it changed.

    Writes the operator's fields only (pod_contract.OPERATOR_FIELDS): progress and metrics are the trainer's.
    """
    obs = observe(seen.job, seen.pods, queued=job.spec.queue_name is not None, kueue=seen.kueue)
    old = obj.status
    status = FineTuneJobStatus(
        phase=obs.phase,
        observed_generation=obj.generation,
        job_name=job_name(obj.name),
        attempts=obs.attempts,
        conditions=conditions(old.conditions, obs, obj.generation, now(), reported=old),
        start_time=obs.start_time,  # RFC 3339 text from the Job, parsed by the model
        completion_time=(obs.completion_time or old.completion_time or now()) if obs.phase.is_terminal else None,
        failure=Failure(reason=obs.failure, message=obs.message[:4000], exit_code=obs.exit_code)
        if obs.failure
        else None,
        output=published_output(job.spec.output.uri) if obs.phase == Phase.SUCCEEDED else None,
    )
    if job.spec.queue_name is not None:
        queue, waited = queue_status(old, job.spec.queue_name, obs.phase, seen.kueue, now())
        status = status.model_copy(update={"queue": queue})
        OPERATOR_METRICS.queue_cost(obj.namespace, job.spec.queue_name, waited, queue.preemptions - _preemptions(old))
    if old.phase != obs.phase:
        OPERATOR_METRICS.transition(old.phase, obs.phase.value)
        api.record_event(
            dict(obj.body),
            WARNING if obs.phase == Phase.FAILED else NORMAL,
            obs.reason,
            f"{old.phase or 'New'} -> {obs.phase.value}: {obs.message}",
        )
    _trainer_events(api, obj, old.conditions, status.conditions or [])
    # Every pod and Job event lands here; most change nothing, and an unchanged status is not written.
    patch = status_patch(status, Owner.OPERATOR)
    before = owned_part(old, Owner.OPERATOR)
    if any(before.get(key) != value for key, value in patch.items()):
        api.patch_status(obj.namespace, obj.name, patch)
    return obs


def _preemptions(old: FineTuneJobStatus) -> int:
    return old.queue.preemptions if old.queue else 0


def _trainer_events(api: KubeApi, obj: Observed, before: list[Condition] | None, after: list[Condition]) -> None:
    """A Warning when the trainer's store or tracking server starts failing it (retrying, checkpoints not saved,
    tracking records dropped), and when it recovers: the conditions hold the state, the Events the history."""
    was = {c.type: c.status for c in before or []}
    for cond in after:
        if cond.type not in TRAINER_TYPES or was.get(cond.type, "False") == cond.status:
            continue
        if cond.status == "True":
            api.record_event(dict(obj.body), WARNING, cond.type, cond.message)
        else:
            api.record_event(dict(obj.body), NORMAL, TRAINER_TYPES[cond.type], f"{cond.type} no longer holds")


def expired(obj: Observed, job: FineTuneJob) -> bool:
    """Whether ttlAfterFinished has passed since the job finished."""
    ttl, finished = job.spec.ttl_after_finished, obj.status.completion_time
    if not ttl or not obj.finished or finished is None:
        return False
    if finished.tzinfo is None:
        finished = finished.replace(tzinfo=dt.UTC)
    return dt.datetime.now(dt.UTC) >= finished + dt.timedelta(seconds=duration_seconds(ttl))
