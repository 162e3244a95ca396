"""Restarting the operator mid-flight creates no second Job and loses no status."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from tests.integration.operator.test_operator_lifecycle import _get, _job, _phase, _wait

pytestmark = pytest.mark.controlplane
NS = "operator-tests"


def _run_operator() -> Any:
    from kopf.testing import KopfRunner

    return KopfRunner(["run", "--standalone", "--all-namespaces", "-m", "finetune_operator.handlers.main"], timeout=180)


def test_restart_mid_flight(control_plane: Any) -> None:
    plane = control_plane
    os.environ["KUBECONFIG"] = str(plane.kubeconfig)
    os.environ["FINETUNE_OPERATOR_METRICS_PORT"] = "0"
    plane.kubectl("create", "namespace", NS, check=False)
    with _run_operator():
        time.sleep(2)
        plane.kubectl("apply", "-f", "-", stdin=json.dumps(_job("restarted", **{"finetune.dev/test-hold": "true"})))
        _wait(lambda: _phase(plane, "restarted") == "Running", "phase Running", timeout=180)
    before = _get(plane, "ftj", "restarted")["status"]  # type: ignore[index]
    uid = _get(plane, "job", "restarted")["metadata"]["uid"]  # type: ignore[index]
    with _run_operator():
        time.sleep(8)  # resume handlers run and reconcile everything again
        after = _get(plane, "ftj", "restarted")["status"]  # type: ignore[index]
    jobs = json.loads(plane.kubectl("get", "jobs", "-n", NS, "-l", "finetune.dev/job=restarted", "-o", "json"))["items"]
    assert [j["metadata"]["uid"] for j in jobs] == [uid], "the restart created another Job"
    assert after["phase"] == "Running" and after["startTime"] == before["startTime"]
    old = {c["type"]: c["lastTransitionTime"] for c in before["conditions"]}
    assert {c["type"]: c["lastTransitionTime"] for c in after["conditions"]} == old, "conditions moved without a change"
