"""The trainer's progress hook, through the real RBAC the operator renders: it may patch its own
FineTuneJob's status and nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from finetune_api.measurements import RunMeasurements
from finetune_api.v1alpha1.enums import Metric
from finetune_api.validation import validate_document
from finetune_operator.render.rbac import service_account, status_role, status_role_binding
from finetune_trainer.observability.kube_status import KubernetesStatusSink
from finetune_trainer.observability.progress import ProgressState

pytestmark = pytest.mark.controlplane
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tweets-lora.yaml"
NS = "grant-tests"


def _ftj(plane: Any, name: str) -> Any:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"] = {"name": name, "namespace": NS}
    plane.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    return validate_document(doc).job


def test_trainer_patches_only_its_own_status(control_plane: Any) -> None:
    plane = control_plane
    plane.kubectl("create", "namespace", NS, check=False)
    mine, _other = _ftj(plane, "mine"), _ftj(plane, "other")
    for obj in (service_account(mine), status_role(mine), status_role_binding(mine)):
        plane.kubectl("apply", "-f", "-", stdin=json.dumps(obj))
    token = plane.kubectl("create", "token", "mine-trainer", "-n", NS).strip()

    state = ProgressState(
        phase="Running",
        step=84,
        total_steps=200,
        epoch=0.42,
        train_loss=0.91,
        measured=RunMeasurements(metric=Metric.ACCURACY),
        eval_metric=0.71,
    )
    KubernetesStatusSink(plane.server, NS, "mine", token, str(plane.ca)).write(state)
    status = json.loads(plane.kubectl("get", "ftj", "mine", "-n", NS, "-o", "json"))["status"]
    assert status["progress"]["step"] == 84 and status["progress"]["summary"] == "42% 84/200"
    assert status["metrics"]["evalMetric"] == pytest.approx(0.71)
    assert "0.71" in plane.kubectl("get", "ftj", "mine", "-n", NS)

    KubernetesStatusSink(plane.server, NS, "other", token, str(plane.ca)).write(state)  # logs a warning, never raises
    assert "status" not in json.loads(plane.kubectl("get", "ftj", "other", "-n", NS, "-o", "json"))
    kubeconfig = plane.write_kubeconfig("mine-trainer", token)
    denied = plane.kubectl(
        "patch",
        "ftj",
        "mine",
        "-n",
        NS,
        "--type=merge",
        "-p",
        '{"spec":{"suspend":true}}',
        kubeconfig=kubeconfig,
        check=False,
    )
    assert "forbidden" in denied.lower()
    assert (
        plane.kubectl("auth", "can-i", "get", "secrets", "-n", NS, kubeconfig=kubeconfig, check=False).strip() == "no"
    )
