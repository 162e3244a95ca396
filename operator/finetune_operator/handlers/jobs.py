"""FineTuneJob event routing; every decision lives in finetune_operator.reconcile."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from finetune_api import GROUP, PLURAL, VERSION
from finetune_api.v1alpha1.enums import Phase

from ..metrics import OPERATOR_METRICS
from ..naming import JOB_LABEL
from ..reconcile import (
    Snapshot,
    ensure,
    expired,
    needs_reconcile,
    needs_status_sync,
    parse,
    preflight,
    reject,
    sync_status,
    warn_once,
)
from ..resource import Observed
from .runtime import Key, Runtime, current

LOG = logging.getLogger("finetune_operator")
KUEUE_POLL_SECONDS = 5.0


@kopf.on.event(GROUP, VERSION, PLURAL)
async def finetunejob_changed(type: str | None, body: kopf.Body, **_: Any) -> None:
    # Level-triggered, like a controller-runtime reconciler: kopf keeps no bookkeeping on the object
    # (no annotation patch per FineTuneJob, which cost an API write and a watch event each and showed
    # up as drift in GitOps tools), and the work queue retries what fails.
    runtime = current()
    if needs_reconcile(type, body):
        key = Observed.of(body).key
        runtime.latest[key] = dict(body)
        runtime.reconciles.add(key)
    elif needs_status_sync(type, body):
        runtime.status_syncs.add(Observed.of(body).key)


def reconcile(runtime: Runtime, key: Key) -> None:
    api = runtime.api
    # The body of the event that queued this key; a retry reads afresh (quorum read, not the cache).
    body = runtime.latest.pop(key, None) or api.get_finetunejob(*key)
    if body is None or (obj := Observed.of(body)).finished:
        return
    with OPERATOR_METRICS.reconcile.time():
        try:
            job, problems = preflight(body, runtime.settings.pod_defaults)
            if problems or job is None:
                reject(api, obj, problems)
                LOG.info("[%s/%s] rejected: %s", *key, "; ".join(problems))
                return
            warn_once(api, obj, job)
            obs = sync_status(api, obj, job, ensure(api, obj, job, runtime.settings))
        except Exception as exc:
            runtime.report_failure(body, exc)
            raise
    LOG.info("[%s/%s] reconciled: %s", *key, obs.phase.value)


@kopf.on.event("batch", "v1", "jobs", labels={JOB_LABEL: kopf.PRESENT})
@kopf.on.event("", "v1", "pods", labels={JOB_LABEL: kopf.PRESENT})
async def child_changed(body: kopf.Body, **_: Any) -> None:
    # Only the key is queued: a burst of Job and pod events becomes one sync (workqueue.py).
    current().status_syncs.add((body["metadata"]["namespace"], body["metadata"]["labels"][JOB_LABEL]))


def sync_from_children(runtime: Runtime, key: Key) -> None:
    # The Job and pods are read afresh, not from kopf indexes: an index of the *other* resource can lag
    # this event (a pod and its Job finish within a moment), and two such events would each miss the
    # final transition.
    namespace, name = key
    api = runtime.api
    owner = api.get_finetunejob(namespace, name, cached=True)
    if owner is None or (obj := Observed.of(owner)).finished:
        return
    # A Job exists only for a spec that passed preflight, so the spec parses.
    job = parse(owner)
    sync_status(api, obj, job, Snapshot.read(api, namespace, name, queued=job.spec.queue_name is not None))


def _waiting_on_kueue(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") in (Phase.QUEUED, Phase.PREEMPTED)


@kopf.timer(GROUP, VERSION, PLURAL, interval=KUEUE_POLL_SECONDS, idle=KUEUE_POLL_SECONDS, when=_waiting_on_kueue)
def waiting_on_kueue(body: kopf.Body, **_: Any) -> None:
    """Kueue's reason moves on its Workload, which no event here watches (Kueue may not even be installed):
    while a job waits on Kueue, its status is synced on this beat as well."""
    current().status_syncs.add(Observed.of(body).key)


@kopf.timer(GROUP, VERSION, PLURAL, interval=15, when=lambda spec, **_: bool(spec.get("ttlAfterFinished")))
def ttl_after_finished(body: kopf.Body, **_: Any) -> None:
    obj = Observed.of(body)
    if obj.finished and expired(obj, parse(body)):
        current().api.delete_finetunejob(*obj.key)
