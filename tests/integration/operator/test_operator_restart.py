"""Restarting the operator mid-flight creates no second Job and loses no status."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.integration.operator.in_process import example_job, ftj_phase, get_object, in_process_operator, wait

pytestmark = pytest.mark.controlplane
NS = "operator-tests"


def test_restart_mid_flight(control_plane: Any) -> None:
    plane = control_plane
    with in_process_operator(plane, NS):
        plane.kubectl("apply", "-f", "-", stdin=json.dumps(example_job("restarted", NS, hold=True)))
        wait(lambda: ftj_phase(plane, "restarted", NS) == "Running", "phase Running", timeout=180)
    before = get_object(plane, "ftj", "restarted", NS)["status"]  # type: ignore[index]
    uid = get_object(plane, "job", "restarted", NS)["metadata"]["uid"]  # type: ignore[index]
    with in_process_operator(plane, NS):
        time.sleep(8)  # resume handlers run and reconcile everything again
        after = get_object(plane, "ftj", "restarted", NS)["status"]  # type: ignore[index]
    jobs = json.loads(plane.kubectl("get", "jobs", "-n", NS, "-l", "finetune.dev/job=restarted", "-o", "json"))["items"]
    assert [j["metadata"]["uid"] for j in jobs] == [uid], "the restart created another Job"
    assert after["phase"] == "Running" and after["startTime"] == before["startTime"]
    old = {c["type"]: c["lastTransitionTime"] for c in before["conditions"]}
    assert {c["type"]: c["lastTransitionTime"] for c in after["conditions"]} == old, "conditions moved without a change"
