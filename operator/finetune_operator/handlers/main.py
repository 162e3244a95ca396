"""Event routing only; every decision lives in finetune_operator.reconcile."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

import kopf

from finetune_api import GROUP, PLURAL, VERSION

from ..kube import KubeApi
from ..metrics import OPERATOR_METRICS
from ..naming import JOB_LABEL
from ..reconcile import TERMINAL, Snapshot, ensure, expired, preflight, reject, sync_status
from ..settings import OperatorSettings
from ..workqueue import CoalescingQueue

SETTINGS = OperatorSettings()
_api: KubeApi | None = None


def api() -> KubeApi:
    global _api  # noqa: PLW0603 - one client per process, created after kopf has logged in
    if _api is None:
        _api = _new_api()
    return _api


def _new_api() -> KubeApi:
    # Reconciles, status syncs, the Event poster and the phase gauge may all call at once.
    return KubeApi(connections=SETTINGS.workers + SETTINGS.status_workers + 2)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the ServiceAccount's token; elsewhere: the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Our status schema is strict: kopf keeps its bookkeeping in annotations, not in status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="finetune.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="finetune.dev")
    # Our own Events are posted by events.py; kopf posts only its warnings and errors (a failing
    # handler), not an Event for each of its INFO lines ("Handler succeeded", "Creation is processed").
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    # kopf runs sync handlers in a thread pool sized by the cores (6 threads on 2 cores); a burst of new
    # FineTuneJobs would queue behind a handful of API round trips.
    settings.execution.max_workers = SETTINGS.workers
    if settings.peering.priority == 0:
        # Replicas of one Deployment share a command line, and kopf freezes *every* peer when two
        # share a priority, which would leave the cluster unserved. Each process draws its own: the
        # highest acts, the others pause and take over once its peering record is gone.
        settings.peering.priority = secrets.randbelow(2**31 - 2) + 1
    # A fresh client per operator run, with the credentials of this run (its login may differ).
    global _api  # noqa: PLW0603
    _api = _new_api()
    if SETTINGS.metrics_port:
        OPERATOR_METRICS.serve(SETTINGS.metrics_port)
        threading.Thread(target=_resync_phases, name="phase-gauge", daemon=True).start()


def _resync_phases() -> None:
    while True:
        try:
            OPERATOR_METRICS.set_phases(api().count_phases())
        except Exception as exc:  # noqa: BLE001 - a metrics refresh must never stop the operator
            logging.getLogger(__name__).warning("phase gauge refresh failed: %s", exc)
        time.sleep(SETTINGS.phase_gauge_interval)


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def reconcile(body: kopf.Body, reason: str, **_: Any) -> None:
    status = body.get("status") or {}
    if status.get("phase") in TERMINAL:
        return
    if reason == "create" and _already_created(body):
        return
    with OPERATOR_METRICS.reconcile.time():
        try:
            job, problems = preflight(dict(body))
            if problems or job is None:
                reject(api(), dict(body), problems)
                return
            sync_status(api(), dict(body), ensure(api(), dict(body), job, SETTINGS))
        except Exception as exc:
            OPERATOR_METRICS.errors.labels(reason=type(exc).__name__).inc()
            raise kopf.TemporaryError(f"{type(exc).__name__}: {exc}", delay=5) from exc


@kopf.on.event("batch", "v1", "jobs", labels={JOB_LABEL: kopf.PRESENT})
@kopf.on.event("", "v1", "pods", labels={JOB_LABEL: kopf.PRESENT})
def child_changed(body: kopf.Body, **_: Any) -> None:
    # Only the key is queued: a burst of Job and pod events becomes one sync (workqueue.py), and kopf's
    # handler threads stay free for new FineTuneJobs.
    STATUS_SYNCS.add((body["metadata"]["namespace"], body["metadata"]["labels"][JOB_LABEL]))


def _sync_from_children(key: tuple[str, str]) -> None:
    # Fresh reads, not kopf indexes: an index of the *other* resource can lag this event (a pod and its
    # Job finish within a moment), and two such events would each miss the final transition.
    namespace, name = key
    owner = api().get_finetunejob(namespace, name)
    if owner is None or (owner.get("status") or {}).get("phase") in TERMINAL:
        return
    sync_status(api(), owner, Snapshot.read(api(), namespace, name))


STATUS_SYNCS: CoalescingQueue[tuple[str, str]] = CoalescingQueue(
    _sync_from_children,
    workers=SETTINGS.status_workers,
    delay=SETTINGS.status_sync_delay,
    retry_delay=5.0,
    name="status-sync",
)


def _already_created(body: kopf.Body) -> bool:
    """A creation kopf delivers again: our own status patch in the first run can overtake kopf's
    bookkeeping annotation, and kopf then sees an object it never handled. A status that names the Job
    and has observed this generation was written after that Job was applied: nothing is left to do
    (measured: in a burst of 1000 new FineTuneJobs nearly every one was reconciled twice)."""
    status = body.get("status") or {}
    return bool(status.get("jobName")) and status.get("observedGeneration") == body.metadata.get("generation")


@kopf.timer(GROUP, VERSION, PLURAL, interval=15, when=lambda spec, **_: bool(spec.get("ttlAfterFinished")))
def ttl_after_finished(body: kopf.Body, **_: Any) -> None:
    if expired(dict(body)):
        meta = body["metadata"]
        api().delete_finetunejob(meta["namespace"], meta["name"])
