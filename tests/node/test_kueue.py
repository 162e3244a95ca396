"""Shared GPU clusters queue fine-tunes with Kueue: the journeys on real pods, with Kueue installed from its own
chart (tests/node/kueue.py) and a ClusterQueue whose CPU quota fits one trainer.

- Waiting: a second job in the queue shows phase Queued with Kueue's own reason, and runs when the first ends;
  a two-node job waits whole (no rank's pod starts alone).
- Preempted and resumed: a high-priority job preempts a running low-priority one; the low one saves a
  checkpoint, shows Preempted then Queued, and, admitted again, resumes with every step once in its history.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.prometheus import query, run_prometheus

from . import kueue
from .cluster import NodeCluster, create_s3_secret, install_operator, uninstall_operator
from .kubelet import NODE_LABEL
from .test_journey import Cluster, _apply, _job, _scraped, _wait

pytestmark = pytest.mark.node
NS = "queued"
# The ClusterQueue holds one trainer (TRAINER_CPU) but not two.
TRAINER_CPU, QUOTA_CPU, QUOTA_MEMORY = "1200m", "1500m", "12Gi"
PAIR_CPU = "700m"  # per pod of the two-node job: 1400m, which fits the quota alone but not beside a trainer


@pytest.fixture(scope="module")
def queued(node_cluster: NodeCluster, shipped_s3: str) -> Iterator[Cluster]:
    plane = node_cluster.plane
    seconds = install_operator(node_cluster, replicas=1)
    installed = kueue.install(plane, {NODE_LABEL: "true"})
    print(
        f"operator Ready in {seconds:.0f} s; Kueue {kueue.version()} Ready in {installed.seconds:.0f} s "
        f"(helm install --wait), its webhooks {installed.webhook_seconds:.0f} s later"
    )
    plane.kubectl("create", "namespace", NS)
    create_s3_secret(plane, NS)
    kueue.create_queues(plane, NS, QUOTA_CPU, QUOTA_MEMORY)
    yield Cluster(plane, node_cluster.pool, shipped_s3, node_cluster.pod_s3, node_cluster.network, NS)
    # Everything queued goes before Kueue does: a Job left behind would get a Workload again, and a Workload's
    # finalizer is lifted only by a running Kueue.
    plane.kubectl("delete", "finetuneexperiments,finetunejobs", "--all", "-n", NS, "--wait=true", "--timeout=180s")
    plane.kubectl("delete", "jobs", "--all", "-n", NS, "--wait=true", "--timeout=180s")
    kueue.uninstall(plane)
    uninstall_operator(plane)


def _queued_job(cluster: Cluster, name: str, priority: str | None = None, **spec: Any) -> dict[str, Any]:
    scheduling: dict[str, Any] = {"nodeSelector": {NODE_LABEL: "true"}, "queueName": kueue.LOCAL_QUEUE}
    if priority:
        scheduling["workloadPriorityClass"] = priority
    doc = _job(name, cluster, **spec)
    doc["spec"]["resources"] = {"gpus": 0, "cpu": TRAINER_CPU, "memory": "6Gi"}
    doc["spec"]["scheduling"] = scheduling
    doc["spec"]["evaluation"].pop("gate", None)  # a few steps: the journeys are about the queue, not the score
    return doc


def _phase(cluster: Cluster, name: str) -> str:
    return str(cluster.status(name).get("phase") or "")


def _events(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    selector = f"involvedObject.kind=FineTuneJob,involvedObject.name={name}"
    out = cluster.plane.kubectl("get", "events", "-n", NS, "--field-selector", selector, "-o", "json")
    return sorted(json.loads(out)["items"], key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")


def _finished(cluster: Cluster, name: str, timeout: float = 900) -> dict[str, Any]:
    status: dict[str, Any] = _wait(
        f"{name} to finish",
        lambda: (s := cluster.status(name)).get("phase") in ("Succeeded", "Failed") and s,
        timeout,
        lambda: cluster.diagnose(name) + "\n" + kueue.diagnosis(cluster.plane),
    )
    assert status["phase"] == "Succeeded", cluster.diagnose(name)
    return status


def test_jobs_wait_in_the_queue_whole_and_run_in_turn(queued: Cluster) -> None:
    """Waiting, and all or nothing: while `first` holds the quota, `second` shows phase Queued with Kueue's
    reason, and the two-node `pair` waits whole (no rank's pod starts alone); each runs in turn."""
    started = time.monotonic()
    small = {"dataset": {"maxSamples": 400, "maxEvalSamples": 100}}
    _apply(queued, _queued_job(queued, "first", **small))
    _wait("first to be admitted", lambda: _phase(queued, "first") in ("Initializing", "Running"), 300,
          lambda: queued.diagnose("first") + kueue.diagnosis(queued.plane))  # fmt: skip
    _apply(queued, _queued_job(queued, "second", **small))
    pair = _queued_job(queued, "pair", **small)
    pair["spec"]["resources"] = {"gpus": 0, "nodes": 2, "cpu": PAIR_CPU, "memory": "3Gi"}
    pair["spec"]["training"]["batchSize"] = 16
    _apply(queued, pair)

    def waiting(name: str) -> dict[str, Any] | None:
        status = queued.status(name)
        conds = {c["type"]: c for c in status.get("conditions") or []}
        return conds["Queued"] if status.get("phase") == "Queued" and "quota" in conds["Queued"]["message"] else None

    reason = _wait(
        "second to wait with Kueue's reason", lambda: waiting("second"), 120, lambda: queued.diagnose("second")
    )
    assert "insufficient" in reason["message"] and "cpu" in reason["message"], reason
    table = queued.plane.kubectl("get", "ftj", "second", "-n", NS)
    assert "Queued" in table.splitlines()[1], table
    _wait("pair to wait with Kueue's reason", lambda: waiting("pair"), 120, lambda: queued.diagnose("pair"))
    # Pods listed, then the Job read: a Job still suspended after the listing had no pod at listing time.
    polls = 0
    while time.monotonic() - started < 1200:
        pods = len(queued.pods("pair"))
        if not queued.get("job", "pair")["spec"].get("suspend"):
            break
        assert pods == 0, f"a pod of the two-node job started while Kueue held it ({pods})"
        polls += 1
        time.sleep(2)
    assert polls > 0, "the two-node job was held while the quota was short"
    runs = {name: _finished(queued, name) for name in ("first", "second", "pair")}
    print(f"waiting: all three Succeeded {time.monotonic() - started:.0f} s after the first was applied")
    assert runs["second"]["startTime"] >= runs["first"]["completionTime"], "second ran only once first had ended"
    assert runs["pair"]["startTime"] >= runs["first"]["completionTime"], runs["pair"]
    assert len(queued.pods("pair")) == 2, "both ranks ran, once admitted"
    for name in ("second", "pair"):
        queue = runs[name]["queue"]
        assert queue["queuedSeconds"] > 0 and queue["preemptions"] == 0, queue
        reasons = [e["reason"] for e in _events(queued, name)]
        assert "Queued" in reasons and reasons.index("Queued") < len(reasons) - 1, reasons


def test_a_preempted_job_saves_a_checkpoint_and_resumes_after_the_higher_one(queued: Cluster, tmp_path: Path) -> None:
    name, steps_total = "low", 60
    low = _queued_job(
        queued,
        name,
        kueue.LOW,
        training={"maxSteps": steps_total, "batchSize": 16, "loggingSteps": 1},
        output={"checkpointEvery": 5},
        dataset={"maxSamples": 1200, "maxEvalSamples": 100},
    )
    low["spec"]["training"].pop("epochs", None)
    started = time.monotonic()
    _apply(queued, low)

    at = _wait("low to pass step 8", lambda: queued.step(name) >= 8 and queued.step(name), 900,
               lambda: queued.diagnose(name))  # fmt: skip
    high = _queued_job(queued, "high", kueue.HIGH, dataset={"maxSamples": 400, "maxEvalSamples": 100})
    _apply(queued, high)
    _wait("low to be queued again", lambda: _phase(queued, name) == "Queued", 300, lambda: queued.diagnose(name))
    preempted_at = time.monotonic()
    events = _events(queued, name)
    said = {e["reason"]: e["message"] for e in events}
    assert "Preempted" in said and "reempted" in said["Preempted"], events
    _finished(queued, "high")
    status = _finished(queued, name)
    print(
        f"preemption: low preempted near step {at}, {preempted_at - started:.0f} s after apply; "
        f"Succeeded {time.monotonic() - started:.0f} s after apply"
    )
    job = queued.get("job", name)
    assert int(job["status"].get("failed", 0)) == 0, "the preemption did not count as a failure"
    assert status.get("attempts", 1) <= 2, status
    assert status["queue"]["preemptions"] == 1 and status["queue"]["queuedSeconds"] > 0, status["queue"]

    import boto3

    s3 = boto3.client("s3", endpoint_url=queued.s3, region_name="us-east-1")
    metrics = json.loads(s3.get_object(Bucket="models", Key=f"out/{name}/metrics.json")["Body"].read())
    trained = [entry["step"] for entry in metrics["loss_history"] if "train_loss" in entry]
    print(f"preempted job's loss history (steps): {trained}")
    assert trained == list(range(1, steps_total + 1)), trained
    # What sharing cost, where a user reads it: the model card, and the operator's series in Prometheus.
    card = s3.get_object(Bucket="models", Key=f"out/{name}/README.md")["Body"].read().decode()
    (line,) = [line for line in card.splitlines() if "shared cluster (Kueue)" in line]
    assert re.search(r"\d+ s queued before admission, preempted 1 time\b", line), line
    queued_s = int(re.search(r"(\d+) s queued", line).group(1))  # type: ignore[union-attr]
    assert abs(queued_s - status["queue"]["queuedSeconds"]) <= 1, (line, status["queue"])
    print(f"preempted job's model card: {line.strip()}")
    series = _operator_series(
        queued, tmp_path, "finetune_operator_preemptions_total", "finetune_operator_queue_wait_seconds_count"
    )
    assert series["finetune_operator_preemptions_total"] == 1, series
    assert series["finetune_operator_queue_wait_seconds_count"] >= 1, series


def _operator_series(cluster: Cluster, folder: Path, *names: str) -> dict[str, float]:
    """The operator's series for this namespace's queue, as Prometheus scrapes them through the metrics Service."""
    trainers = folder / "trainers.json"
    trainers.write_text("[]")
    selector = f'{{namespace="{NS}",queue="{kueue.LOCAL_QUEUE}"}}'
    with run_prometheus({}, folder, scrape_configs=_scraped(cluster, trainers), netns=cluster.network.hub) as url:

        def scraped() -> dict[str, float] | None:
            found = {n: query(url, f"sum({n}{selector})") for n in names}
            return {n: float(r[0]["value"][1]) for n, r in found.items()} if all(found.values()) else None

        return dict(_wait("Prometheus to scrape the operator's queue series", scraped, 60))


def test_an_experiment_wider_than_the_quota_completes_every_variant_through_the_queue(queued: Cluster) -> None:
    """Three variants at once (maxParallel 3) into a queue that runs one trainer at a time: Kueue admits them in
    turn, never two at once, and every variant, the report step and the experiment end Succeeded."""
    name, variants = "sweep", ("r4", "r8", "r16")
    template = _queued_job(queued, name, dataset={"maxSamples": 300, "maxEvalSamples": 100})["spec"]
    template["evaluation"] = {"baseline": True}
    experiment = {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuneExperiment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "template": template,
            "variants": [{"name": v, "method": {"type": "lora", "r": int(v[1:])}} for v in variants],
            "maxParallel": len(variants),  # the quota, not the experiment, decides how many train at once
            "select": {"metric": "accuracy"},
        },
    }
    started = time.monotonic()
    _apply(queued, experiment)
    jobs = [f"{name}-{v}" for v in variants]
    most_at_once = 0

    def done() -> dict[str, Any]:
        nonlocal most_at_once
        status = dict(queued.get("finetuneexperiment", name).get("status") or {})
        admitted = [j for j in jobs if _phase(queued, j) in ("Initializing", "Running")]
        most_at_once = max(most_at_once, len(admitted))
        assert len(admitted) <= 1, f"the quota fits one trainer, yet {admitted} run at once"
        return status if status.get("phase") in ("Succeeded", "Failed") else {}

    status = _wait("the experiment to finish", done, 1500, lambda: "\n".join(queued.diagnose(j) for j in jobs))
    print(f"experiment under a quota: kubectl apply -> {status['phase']} in {time.monotonic() - started:.0f} s")
    assert status["phase"] == "Succeeded", status
    assert {v["name"]: v["phase"] for v in status["variants"]} == dict.fromkeys(variants, "Succeeded"), status
    assert most_at_once == 1
    waited = {j: queued.status(j)["queue"]["queuedSeconds"] for j in jobs}
    assert sum(1 for seconds in waited.values() if seconds > 0) >= len(variants) - 1, waited
