"""The operator in-process (kopf's runner) against the real control plane: kwok plays the nodes and pods."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.integration.operator.in_process import example_job, ftj_phase, get_object, in_process_operator, wait

pytestmark = pytest.mark.controlplane
NS = "operator-tests"


@pytest.fixture(scope="module")
def operator(control_plane: Any) -> Iterator[Any]:
    with in_process_operator(control_plane, NS):
        yield control_plane


def test_readme_example_runs_to_succeeded(operator: Any) -> None:
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(example_job("happy", NS)))
    job = wait(lambda: get_object(operator, "job", "happy", NS), "the Job")
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["securityContext"]["runAsNonRoot"] is True
    cm = get_object(operator, "configmap", "happy-config", NS)
    assert cm is not None and "tweets" in cm["data"]["finetunejob.yaml"]
    owner = job["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "FineTuneJob" and owner["name"] == "happy" and owner["controller"] is True
    seen = set()

    def done() -> bool:
        seen.add(ftj_phase(operator, "happy", NS))
        return "Succeeded" in seen

    wait(done, "phase Succeeded", timeout=180)
    assert "Running" in seen or "Initializing" in seen, seen
    status = get_object(operator, "ftj", "happy", NS)["status"]  # type: ignore[index]
    assert status["startTime"] and status["completionTime"] and status["attempts"] == 1
    # Where the output is: the trainer exits 0 only after writing the manifest there.
    assert status["output"] == {
        "uri": "s3://models/out/tweets-lora/",
        "manifest": "s3://models/out/tweets-lora/manifest.json",
    }
    shown = yaml.safe_load(operator.kubectl("get", "ftj", "happy", "-n", NS, "-o", "yaml"))
    assert shown["status"]["output"]["manifest"] == "s3://models/out/tweets-lora/manifest.json"
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Complete"]["status"] == "True" and conds["Failed"]["status"] == "False"
    assert all(c["observedGeneration"] == 1 for c in conds.values())
    events = operator.kubectl("get", "events", "-n", NS, "--field-selector", "involvedObject.name=happy", "-o", "json")
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"JobCreated", "TrainerSucceeded"} <= reasons, reasons
    table = operator.kubectl("get", "ftj", "happy", "-n", NS)
    assert "Succeeded" in table and "lora" in table


def test_data_error_fails_without_retry(operator: Any) -> None:
    doc = example_job("bad-data", NS, exit_code=11)
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    wait(lambda: ftj_phase(operator, "bad-data", NS) == "Failed", "phase Failed", timeout=180)
    status = get_object(operator, "ftj", "bad-data", NS)["status"]  # type: ignore[index]
    assert status["failure"]["reason"] == "DataError" and status["failure"]["exitCode"] == 11
    assert status["attempts"] == 1, "a data error must not be retried"


def test_preemption_exit_is_retried(operator: Any) -> None:
    doc = example_job("preempted", NS, exit_code=14)
    doc["spec"]["retries"] = 1
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    wait(lambda: ftj_phase(operator, "preempted", NS) == "Failed", "phase Failed after retries", timeout=240)
    status = get_object(operator, "ftj", "preempted", NS)["status"]  # type: ignore[index]
    assert status["attempts"] == 2, "a preempted trainer is retried (retries: 1)"
    assert status["failure"]["reason"] == "Preempted"


def test_invalid_spec_is_rejected_before_any_pod(operator: Any) -> None:
    doc = example_job("overlap", NS)
    doc["spec"]["output"]["uri"] = "s3://data/tweets/"  # overlaps the dataset: only the deeper checks see it
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    wait(lambda: ftj_phase(operator, "overlap", NS) == "Failed", "phase Failed", timeout=30)
    status = get_object(operator, "ftj", "overlap", NS)["status"]  # type: ignore[index]
    assert status["failure"]["reason"] == "InvalidSpec" and "spec.output.uri" in status["failure"]["message"]
    assert get_object(operator, "job", "overlap", NS) is None, "no Job may exist for an invalid spec"


def _pods(plane: Any, name: str) -> list[dict[str, Any]]:
    out = plane.kubectl("get", "pods", "-n", NS, "-l", f"finetune.dev/job={name}", "-o", "json")
    return list(json.loads(out)["items"])


def test_suspend_and_resume(operator: Any) -> None:
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(example_job("pausable", NS, hold=True)))
    wait(lambda: ftj_phase(operator, "pausable", NS) == "Running", "phase Running", timeout=180)
    operator.kubectl("patch", "ftj", "pausable", "-n", NS, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    wait(lambda: ftj_phase(operator, "pausable", NS) == "Suspended", "phase Suspended", timeout=180)
    job = get_object(operator, "job", "pausable", NS)
    assert job is not None and job["spec"]["suspend"] is True
    wait(
        lambda: (
            not json.loads(operator.kubectl("get", "pods", "-n", NS, "-l", "finetune.dev/job=pausable", "-o", "json"))[
                "items"
            ]
        ),
        "pods gone",
    )
    operator.kubectl("patch", "ftj", "pausable", "-n", NS, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait(lambda: ftj_phase(operator, "pausable", NS) == "Running", "phase Running again", timeout=180)
    conds = {c["type"]: c["status"] for c in get_object(operator, "ftj", "pausable", NS)["status"]["conditions"]}  # type: ignore[index]
    assert conds["Suspended"] == "False" and conds["Running"] == "True"


def test_deletion_cascades(operator: Any) -> None:
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(example_job("doomed", NS, hold=True)))
    wait(lambda: get_object(operator, "job", "doomed", NS), "the Job")
    operator.kubectl("delete", "ftj", "doomed", "-n", NS, "--wait=true")
    for kind, name in (
        ("job", "doomed"),
        ("configmap", "doomed-config"),
        ("role", "doomed-trainer"),
        ("serviceaccount", "doomed-trainer"),
    ):

        def gone(kind: str = kind, name: str = name) -> bool:
            return get_object(operator, kind, name, NS) is None

        wait(gone, f"{kind}/{name} to be garbage-collected", timeout=60)


def test_two_nodes_get_an_indexed_job_and_a_headless_service(operator: Any) -> None:
    doc = example_job("two-nodes", NS)
    doc["spec"]["resources"] = {"gpus": 2, "nodes": 2}
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    job = wait(lambda: get_object(operator, "job", "two-nodes", NS), "the Job")
    svc = get_object(operator, "service", "two-nodes", NS)
    assert svc is not None and svc["spec"]["clusterIP"] == "None"
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2
    pods = wait(
        lambda: (
            [
                p
                for p in json.loads(
                    operator.kubectl("get", "pods", "-n", NS, "-l", "finetune.dev/job=two-nodes", "-o", "json")
                )["items"]
            ]
            if len(
                json.loads(operator.kubectl("get", "pods", "-n", NS, "-l", "finetune.dev/job=two-nodes", "-o", "json"))[
                    "items"
                ]
            )
            >= 2
            else None
        ),
        "two pods",
    )
    for pod in pods:
        assert pod["spec"]["subdomain"] == "two-nodes" and pod["spec"]["hostname"].startswith("two-nodes-")
        env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
        assert env["MASTER_ADDR"]["value"] == "two-nodes-0.two-nodes" and env["NNODES"]["value"] == "2"
    wait(lambda: ftj_phase(operator, "two-nodes", NS) == "Succeeded", "phase Succeeded", timeout=180)


def test_kueue_queue_creates_the_job_suspended_for_admission(operator: Any) -> None:
    doc = example_job("queued", NS)
    doc["spec"]["scheduling"] = {"queueName": "gpu-team"}
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    job = wait(lambda: get_object(operator, "job", "queued", NS), "the Job")
    assert job["spec"]["suspend"] is True and job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-team"
    wait(lambda: ((get_object(operator, "ftj", "queued", NS) or {}).get("status") or {}).get("conditions"), "status")
    status = get_object(operator, "ftj", "queued", NS)["status"]  # type: ignore[index]
    queued = {c["type"]: c for c in status["conditions"]}["Queued"]
    assert status["phase"] == "Queued" and queued["status"] == "True", status
    assert queued["message"] == "waiting for Kueue to admit the Job", "no Kueue here: no Workload to read a reason from"
    # Kueue admits by unsuspending the Job; the operator follows what it observes.
    operator.kubectl("patch", "job", "queued", "-n", NS, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait(lambda: ftj_phase(operator, "queued", NS) == "Succeeded", "phase Succeeded after admission", timeout=180)


def test_ttl_after_finished_deletes_the_job(operator: Any) -> None:
    doc = example_job("short-lived", NS)
    doc["spec"]["ttlAfterFinished"] = "20s"  # long enough to see Succeeded before it goes
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    wait(lambda: ftj_phase(operator, "short-lived", NS) == "Succeeded", "phase Succeeded", timeout=180)
    wait(lambda: get_object(operator, "ftj", "short-lived", NS) is None, "ttlAfterFinished to delete it", timeout=180)
    wait(lambda: get_object(operator, "job", "short-lived", NS) is None, "the Job to be garbage-collected", timeout=180)
