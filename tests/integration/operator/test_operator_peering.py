"""Two operator replicas, as the chart runs them (same command line, kopf peering), against the real
control plane: exactly one acts, and the other takes over when the leader leaves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane.operator_process import OperatorProcess
from tests.integration.operator.in_process import example_job, get_object, wait

pytestmark = pytest.mark.controlplane
REPO = Path(__file__).resolve().parents[3]
PEERING = "peering-test"
NS = "operator-tests"


class Replica(OperatorProcess):
    """One operator process started exactly like the chart's Deployment starts it."""

    @property
    def name(self) -> str:
        return self.log.stem


def _replica(name: str, plane: Any, logs: Path) -> Replica:
    return Replica.start(plane.kubeconfig, logs / f"{name}.log", [f"--peering={PEERING}"], {"POD_ID": name})


def _peers(plane: Any) -> dict[str, dict[str, Any]]:
    doc = get_object(plane, "clusterkopfpeering", PEERING, "default") or {}
    return dict(doc.get("status") or {})


def _handled(replica: Replica, name: str) -> bool:
    return f"[{NS}/{name}] reconciled" in replica.output()


@pytest.fixture
def replicas(control_plane: Any, tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    plane = control_plane
    plane.kubectl("apply", "-f", str(REPO / "charts" / "finetune-operator" / "crds" / "kopf-peering.yaml"))
    plane.kubectl("create", "namespace", NS, check=False)
    plane.kubectl("delete", "clusterkopfpeering", PEERING, "--ignore-not-found")
    peering = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING}}
    plane.kubectl("apply", "-f", "-", stdin=json.dumps(peering))
    started: list[Replica] = []
    try:
        # One after the other, so the second meets the first in the peering object before it acts.
        started.append(_replica("replica-a", plane, tmp_path))
        wait(lambda: "replica-a" in _peers(plane), "replica-a in the peering object", timeout=60)
        started.append(_replica("replica-b", plane, tmp_path))
        wait(lambda: "replica-b" in _peers(plane), "replica-b in the peering object", timeout=60)
        yield started[0], started[1]
    finally:
        for replica in started:
            replica.stop()


def test_one_replica_acts_and_the_other_takes_over(control_plane: Any, replicas: tuple[Replica, Replica]) -> None:
    plane = control_plane
    peers = _peers(plane)
    priorities = {name: peers[name]["priority"] for name in ("replica-a", "replica-b")}
    assert priorities["replica-a"] != priorities["replica-b"], f"replicas drew the same priority: {priorities}"
    by_name = {r.name: r for r in replicas}
    leader = by_name[max(priorities, key=priorities.__getitem__)]
    follower = by_name[min(priorities, key=priorities.__getitem__)]
    if follower.name == "replica-a":
        # kopf starts a newcomer paused until it has read the peering object, so only a follower
        # that was already running when the leader arrived has a pause to log.
        wait(lambda: "Pausing operations in favour of" in follower.output(), "the follower to pause", timeout=60)

    plane.kubectl("apply", "-f", "-", stdin=json.dumps(example_job("peered-one", NS, hold=True)))
    wait(lambda: get_object(plane, "job", "peered-one", NS), "the Job of peered-one", timeout=60)
    wait(lambda: _handled(leader, "peered-one"), "the leader's reconcile of peered-one", timeout=30)
    assert not _handled(follower, "peered-one"), follower.output()[-3000:]
    assert "Pausing all operators" not in leader.output() + follower.output(), "both replicas froze"

    # A clean shutdown (a rolling update, a drained node) removes the leader's record at once.
    leader.stop()
    wait(lambda: leader.name not in _peers(plane), "the leader's record to go", timeout=30)
    wait(lambda: "Resuming operations" in follower.output(), "the follower to resume", timeout=60)
    plane.kubectl("apply", "-f", "-", stdin=json.dumps(example_job("peered-two", NS, hold=True)))
    wait(lambda: get_object(plane, "job", "peered-two", NS), "the follower to create the Job of peered-two", timeout=60)
    wait(lambda: _handled(follower, "peered-two"), "the follower's reconcile of peered-two", timeout=30)

    jobs = json.loads(plane.kubectl("get", "jobs", "-n", NS, "-l", "finetune.dev/job=peered-one", "-o", "json"))
    assert len(jobs["items"]) == 1, "the takeover created a second Job for peered-one"
    for name in ("peered-one", "peered-two"):
        plane.kubectl("delete", "ftj", name, "-n", NS, "--wait=false")
