"""Control-plane faults in the middle of a burst of FineTuneJobs, on the real control plane (issue 21): the API
server restarted, the operator SIGKILLed, etcd frozen for 10 s. Every FineTuneJob reaches its end state with
exactly one Job, no status transition is lost, and the operator reconnects by itself. Each test prints how
long recovery took (pytest -s shows it)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane.operator_process import OperatorProcess
from tests.integration.operator.in_process import example_job, wait

pytestmark = pytest.mark.controlplane
NS = "faults-tests"
BURST = 8


@pytest.fixture
def operator(control_plane: Any, tmp_path: Path) -> Iterator[OperatorProcess]:
    control_plane.kubectl("create", "namespace", NS, check=False)
    started = OperatorProcess.start(control_plane.kubeconfig, tmp_path / "operator.log", ["--standalone"])
    try:
        yield started
    finally:
        started.stop()


def _burst(plane: Any, prefix: str) -> list[str]:
    names = [f"{prefix}-{i}" for i in range(BURST)]
    items = [example_job(name, NS) for name in names]
    plane.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return names


def _statuses(plane: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    out = plane.kubectl("get", "ftj", "-n", NS, "-o", "json", check=False)
    try:
        items = json.loads(out)["items"]
    except ValueError:
        return {}  # the API server is away
    return {i["metadata"]["name"]: i.get("status") or {} for i in items if i["metadata"]["name"] in names}


def _jobs(plane: Any, names: list[str]) -> dict[str, int]:
    items = json.loads(plane.kubectl("get", "jobs", "-n", NS, "-o", "json"))["items"]
    counts = dict.fromkeys(names, 0)
    for job in items:
        owner = job["metadata"].get("labels", {}).get("finetune.dev/job")
        if owner in counts:
            counts[owner] += 1
    return counts


def _all_end(plane: Any, names: list[str], started: float, what: str) -> float:
    """Waits until every job has Succeeded; checks one Job each and a full status; returns the seconds taken."""
    wait(
        lambda: [s.get("phase") for s in _statuses(plane, names).values()] == ["Succeeded"] * len(names),
        f"every FineTuneJob of the burst Succeeded after {what}",
        timeout=240,
    )
    took = time.monotonic() - started
    assert _jobs(plane, names) == dict.fromkeys(names, 1), "a FineTuneJob has no Job or more than one"
    for name, status in _statuses(plane, names).items():
        conditions = {c["type"]: c["status"] for c in status["conditions"]}
        assert conditions["Complete"] == "True" and conditions["Running"] == "False", (name, conditions)
        assert status.get("startTime") and status.get("completionTime") and status.get("jobName"), (name, status)
    print(f"\n{what}: all {len(names)} FineTuneJobs Succeeded {took:.1f} s after the fault began")
    return took


def test_the_api_server_restarted_mid_burst(control_plane: Any, operator: OperatorProcess) -> None:
    names = _burst(control_plane, "apiserver-restart")
    time.sleep(1.0)  # the operator is in the middle of the burst
    started = time.monotonic()
    down = control_plane.restart("kube-apiserver", down_seconds=3)
    print(f"\nthe API server was away {down:.1f} s")
    _all_end(control_plane, names, started, "an API server restart")
    assert operator.proc.poll() is None, "the operator died instead of reconnecting:\n" + operator.output()[-3000:]


def test_the_operator_killed_mid_burst(control_plane: Any, operator: OperatorProcess, tmp_path: Path) -> None:
    names = _burst(control_plane, "operator-kill")
    time.sleep(1.0)
    operator.proc.kill()  # SIGKILL: no clean-up, no goodbye
    operator.proc.wait()
    started = time.monotonic()
    second = OperatorProcess.start(control_plane.kubeconfig, tmp_path / "second.log", ["--standalone"])
    try:
        _all_end(control_plane, names, started, "an operator SIGKILL")
    finally:
        second.stop()


def test_etcd_frozen_for_ten_seconds_mid_burst(control_plane: Any, operator: OperatorProcess) -> None:
    names = _burst(control_plane, "etcd-pause")
    time.sleep(1.0)
    started = time.monotonic()
    with control_plane.paused("etcd"):
        time.sleep(10)
    _all_end(control_plane, names, started, "etcd frozen for 10 s")
    assert operator.proc.poll() is None, "the operator died instead of riding it out:\n" + operator.output()[-3000:]
