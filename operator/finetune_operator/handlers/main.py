"""The operator's entry module (kopf -m): process-wide handlers, and both resources' handlers registered.

Importing it creates nothing: the runtime (settings, API client, work queues) is built by `configure`
when a kopf run starts, and stopped when it ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Any

import kopf

from finetune_api.pod_contract import in_cluster_server
from finetune_api.redact import install_log_redaction

from ..liveness import beat
from ..metrics import OPERATOR_METRICS
from ..settings import OperatorSettings
from . import experiments, jobs, runtime

LOG = logging.getLogger("finetune_operator")
WORK = runtime.Work(
    reconcile=jobs.reconcile, sync_status=jobs.sync_from_children, reconcile_experiment=experiments.reconcile
)


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
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
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
    # Read here, not at import: the environment of this run, and a fresh client with its login.
    rt = runtime.start(OperatorSettings(), WORK)
    if rt.settings.heartbeat_file:
        rt.heartbeat = asyncio.get_running_loop().create_task(
            beat(Path(rt.settings.heartbeat_file), rt.settings.heartbeat_interval)
        )
    if rt.settings.metrics_port:
        OPERATOR_METRICS.serve(rt.settings.metrics_port)
        threading.Thread(target=_resync_phases, args=(rt,), name="phase-gauge", daemon=True).start()


@kopf.on.cleanup()
def stop(**_: Any) -> None:
    runtime.current().stop()


def _resync_phases(rt: runtime.Runtime) -> None:
    while True:
        try:
            OPERATOR_METRICS.set_phases(rt.api.count_phases())
        except Exception as exc:  # noqa: BLE001 - a metrics refresh must never stop the operator
            LOG.warning("phase gauge refresh failed: %s", exc)
        if rt.stopped.wait(rt.settings.phase_gauge_interval):
            return
