"""The progress hook into the FineTuneJob's status: the trainer patches progress and metrics itself.

It may patch only the status of its own FineTuneJob (the operator binds a Role limited by
resourceName to finetunejobs/status), and writes only the fields the pod contract gives the trainer
(progress, metrics, lastCheckpoint). Writes are throttled, and a failed write never disturbs training.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any

from finetune_api import GROUP, PLURAL, VERSION
from finetune_api.measurements import status_metrics
from finetune_api.pod_contract import Owner, in_cluster_server, status_patch
from finetune_api.v1alpha1.status import FineTuneJobStatus, Progress, QueueStatus, StorageHealth, TrackingStatus

from .progress import ProgressState

log = logging.getLogger(__name__)
SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def _duration(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m or h else "") + f"{s}s"


def trainer_status(state: ProgressState) -> FineTuneJobStatus:
    """The part of status the trainer owns, from its progress."""
    return FineTuneJobStatus(
        progress=Progress(
            step=state.step,
            total_steps=state.total_steps or None,
            epoch=round(state.epoch, 4),
            percent=state.percent,
            eta=_duration(state.eta_seconds) or None,
            summary=f"{state.percent}% {state.step}/{state.total_steps}",
        ),
        metrics=status_metrics(
            state.measured, train_loss=state.train_loss, eval_loss=state.eval_loss, eval_metric=state.eval_metric
        )
        if state.measured
        else None,
        last_checkpoint=state.last_checkpoint or None,
        storage=StorageHealth(
            retries=sum(state.storage_retries.values()),
            retrying=_clip(state.storage_retrying),
            checkpoints_failing=_clip(state.checkpoints_failing),
        )
        if state.storage_retries or state.checkpoints_failing
        else None,
        tracking=TrackingStatus(
            run_id=state.tracking_run_id, url=_clip(state.tracking_url), failing=_clip(state.tracking_failing)
        )
        if state.tracking_run_id or state.tracking_failing
        else None,
    )


def _clip(text: str | None, limit: int = 1024) -> str | None:
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


def status_body(state: ProgressState) -> dict[str, Any]:
    body = status_patch(trainer_status(state), Owner.TRAINER)
    if "storage" in body:
        # A merge patch clears a field only by naming it null: a retry that ended, checkpoints saved again.
        body["storage"] = {"retrying": None, "checkpointsFailing": None, **body["storage"]}
    if "tracking" in body:
        body["tracking"] = {"failing": None, **body["tracking"]}
    return {"status": body}


class KubernetesStatusSink:
    def __init__(  # noqa: PLR0913 - the connection's configuration: where, as whom, trusting what, how often
        self, server: str, namespace: str, name: str, token: str, ca_file: str | None, interval: float = 10.0
    ) -> None:
        self.url = f"{server.rstrip('/')}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status"
        self.token = token
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
        self.interval = interval
        self.last = 0.0
        self.last_phase = ""

    @classmethod
    def in_cluster(cls, namespace: str, name: str) -> KubernetesStatusSink | None:
        token = SA_DIR / "token"
        if not os.environ.get("KUBERNETES_SERVICE_HOST") or not token.exists():
            return None
        server = in_cluster_server(os.environ)
        return cls(server, namespace, name, token.read_text().strip(), str(SA_DIR / "ca.crt"))

    def update(self, state: ProgressState) -> None:
        now = time.monotonic()
        if state.phase == self.last_phase and now - self.last < self.interval:
            return
        self.last, self.last_phase = now, state.phase
        self.write(state)

    def write(self, state: ProgressState) -> None:
        body = json.dumps(status_body(state)).encode()
        request = urllib.request.Request(  # noqa: S310 - the API server URL comes from the pod's environment
            self.url,
            data=body,
            method="PATCH",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/merge-patch+json"},
        )
        try:
            urllib.request.urlopen(request, timeout=5, context=self.context).close()  # noqa: S310
        except OSError as exc:
            log.warning("could not write progress to the FineTuneJob status: %s", exc)

    def queue(self) -> QueueStatus | None:
        """What sharing the cluster cost this job so far (status.queue, the operator's), or None: not queued,
        or the read failed (the model card then says nothing of it)."""
        request = urllib.request.Request(self.url, headers={"Authorization": f"Bearer {self.token}"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=5, context=self.context) as answer:  # noqa: S310
                status = FineTuneJobStatus.model_validate((json.loads(answer.read()) or {}).get("status") or {})
        except (OSError, ValueError) as exc:
            log.warning("could not read the FineTuneJob's queue status: %s", exc)
            return None
        return status.queue

    def close(self) -> None:
        pass


def own_queue_cost(namespace: str, name: str) -> dict[str, Any]:
    """Cost fields (measurements.Cost) of the time this job waited in its Kueue queue, when in a cluster."""
    sink = KubernetesStatusSink.in_cluster(namespace, name)
    queue = sink.queue() if sink else None
    return {"queued_seconds": queue.queued_seconds, "preemptions": queue.preemptions} if queue else {}
