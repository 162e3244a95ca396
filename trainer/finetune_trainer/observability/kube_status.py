"""The progress hook into the FineTuneJob's status: the trainer patches progress and metrics itself.

It may patch only the status of its own FineTuneJob (the operator binds a Role limited by
resourceName to finetunejobs/status); phase and conditions stay the operator's. Writes are
throttled, and a failed write never disturbs training.
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

from .progress import ProgressState

log = logging.getLogger(__name__)
SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def _duration(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m or h else "") + f"{s}s"


def status_patch(state: ProgressState) -> dict[str, Any]:
    """The part of status the trainer owns: progress, metrics, lastCheckpoint."""
    progress: dict[str, Any] = {
        "step": state.step,
        "percent": state.percent,
        "summary": f"{state.percent}% {state.step}/{state.total_steps}",
    }
    if state.total_steps:
        progress["totalSteps"] = state.total_steps
    progress["epoch"] = round(state.epoch, 4)
    eta = _duration(state.eta_seconds)
    if eta:
        progress["eta"] = eta
    metrics = {
        "trainLoss": state.train_loss,
        "evalLoss": state.eval_loss,
        "metricName": state.metric_name,
        "evalMetric": state.eval_metric,
        "baselineMetric": state.baseline_metric,
        # The cost side, for FineTuneExperiment comparisons.
        "trainableParameters": state.trainable_parameters,
        "trainSeconds": None if state.train_seconds is None else round(state.train_seconds, 1),
        "tokensPerSecond": None if state.tokens_per_second is None else round(state.tokens_per_second, 1),
        "peakMemoryBytes": state.peak_memory_bytes,
    }
    status: dict[str, Any] = {"progress": progress, "metrics": {k: v for k, v in metrics.items() if v is not None}}
    if state.last_checkpoint:
        status["lastCheckpoint"] = state.last_checkpoint
    if state.output_uri and state.manifest_uri:
        status["output"] = {"uri": state.output_uri, "manifest": state.manifest_uri}
    return {"status": status}


class KubernetesStatusSink:
    def __init__(
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
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        token = SA_DIR / "token"
        if not host or not token.exists():
            return None
        return cls(f"https://{host}:{port}", namespace, name, token.read_text().strip(), str(SA_DIR / "ca.crt"))

    def update(self, state: ProgressState) -> None:
        now = time.monotonic()
        if state.phase == self.last_phase and now - self.last < self.interval:
            return
        self.last, self.last_phase = now, state.phase
        self.write(state)

    def write(self, state: ProgressState) -> None:
        body = json.dumps(status_patch(state)).encode()
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

    def close(self) -> None:
        pass
