"""Event routing only; every decision lives in finetune_operator.reconcile."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import kopf

from finetune_api import GROUP, PLURAL, VERSION
from finetune_api.pod_contract import in_cluster_server
from finetune_api.redact import install_log_redaction

from ..events import WARNING
from ..kube import KubeApi
from ..liveness import beat
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
)
from ..resource import Observed
from ..settings import OperatorSettings
from ..workqueue import CoalescingQueue

SETTINGS = OperatorSettings()
LOG = logging.getLogger("finetune_operator")
_api: KubeApi | None = None
_heartbeat: asyncio.Task[None] | None = None


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
    info = kopf.login_with_service_account(**kwargs)
    if info is not None:
        # kopf's own login always dials kubernetes.default.svc; the kubelet's KUBERNETES_SERVICE_*
        # variables (or the pod's own, on a host network without cluster DNS) say where the API is,
        # as every in-cluster client reads them.
        return dataclasses.replace(info, server=in_cluster_server(os.environ))
    return kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Our status schema is strict: what bookkeeping kopf still keeps (the TTL timer's) goes to annotations.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="finetune.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="finetune.dev")
    # Our own Events are posted by events.py; kopf posts only its own warnings and errors, not an
    # Event for each of its INFO lines ("Handler 'child_changed' succeeded" on every pod event).
    settings.posting.level = logging.WARNING
    # kopf's handlers (the root logger's, and the one posting its warnings as Events) are set up by now.
    install_log_redaction()
    install_log_redaction(logging.getLogger("kopf.objects"))
    settings.watching.server_timeout = 300
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


@kopf.on.startup()
async def start_heartbeat(**_: Any) -> None:
    global _heartbeat  # noqa: PLW0603 - held so the task is not collected
    if SETTINGS.heartbeat_file and _heartbeat is None:
        _heartbeat = asyncio.get_running_loop().create_task(
            beat(Path(SETTINGS.heartbeat_file), SETTINGS.heartbeat_interval)
        )


def _resync_phases() -> None:
    while True:
        try:
            OPERATOR_METRICS.set_phases(api().count_phases())
        except Exception as exc:  # noqa: BLE001 - a metrics refresh must never stop the operator
            LOG.warning("phase gauge refresh failed: %s", exc)
        time.sleep(SETTINGS.phase_gauge_interval)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def finetunejob_changed(type: str | None, body: kopf.Body, **_: Any) -> None:
    # Level-triggered, like a controller-runtime reconciler: kopf keeps no bookkeeping on the object
    # (no annotation patch per FineTuneJob, which cost an API write and a watch event each and showed
    # up as drift in GitOps tools), and the work queue retries what fails.
    if needs_reconcile(type, body):
        key = Observed.of(body).key
        _LATEST[key] = dict(body)
        RECONCILES.add(key)
    elif needs_status_sync(type, body):
        STATUS_SYNCS.add(Observed.of(body).key)


def _reconcile(key: tuple[str, str]) -> None:
    # The body of the event that queued this key; a retry reads afresh (quorum read, not the cache).
    body = _LATEST.pop(key, None) or api().get_finetunejob(*key)
    if body is None or (obj := Observed.of(body)).finished:
        return
    with OPERATOR_METRICS.reconcile.time():
        try:
            job, problems = preflight(body)
            if problems or job is None:
                reject(api(), obj, problems)
                LOG.info("[%s/%s] rejected: %s", *key, "; ".join(problems))
                return
            obs = sync_status(api(), obj, job, ensure(api(), obj, job, SETTINGS))
        except Exception as exc:
            OPERATOR_METRICS.errors.labels(reason=type(exc).__name__).inc()
            # What kopf's own retries showed in `kubectl describe`, now that the work queue retries.
            api().record_event(body, WARNING, "ReconcileFailed", f"{type(exc).__name__}: {exc}; retrying in 5 s")
            raise
    LOG.info("[%s/%s] reconciled: %s", *key, obs.phase.value)


@kopf.on.event("batch", "v1", "jobs", labels={JOB_LABEL: kopf.PRESENT})
@kopf.on.event("", "v1", "pods", labels={JOB_LABEL: kopf.PRESENT})
async def child_changed(body: kopf.Body, **_: Any) -> None:
    # Only the key is queued: a burst of Job and pod events becomes one sync (workqueue.py).
    STATUS_SYNCS.add((body["metadata"]["namespace"], body["metadata"]["labels"][JOB_LABEL]))


def _sync_from_children(key: tuple[str, str]) -> None:
    # The Job and pods are read afresh, not from kopf indexes: an index of the *other* resource can lag
    # this event (a pod and its Job finish within a moment), and two such events would each miss the
    # final transition.
    namespace, name = key
    owner = api().get_finetunejob(namespace, name, cached=True)
    if owner is None or (obj := Observed.of(owner)).finished:
        return
    # A Job exists only for a spec that passed preflight, so the spec parses.
    sync_status(api(), obj, parse(owner), Snapshot.read(api(), namespace, name))


_LATEST: dict[tuple[str, str], dict[str, Any]] = {}
RECONCILES: CoalescingQueue[tuple[str, str]] = CoalescingQueue(
    _reconcile, workers=SETTINGS.workers, delay=0, retry_delay=5.0, name="reconcile"
)
STATUS_SYNCS: CoalescingQueue[tuple[str, str]] = CoalescingQueue(
    _sync_from_children,
    workers=SETTINGS.status_workers,
    delay=SETTINGS.status_sync_delay,
    retry_delay=5.0,
    name="status-sync",
)


@kopf.timer(GROUP, VERSION, PLURAL, interval=15, when=lambda spec, **_: bool(spec.get("ttlAfterFinished")))
def ttl_after_finished(body: kopf.Body, **_: Any) -> None:
    obj = Observed.of(body)
    if obj.finished and expired(obj, parse(body)):
        api().delete_finetunejob(*obj.key)


# The FineTuneExperiment handlers register with kopf on import; they share this module's client and settings.
from . import experiment as _experiment  # noqa: E402, F401
