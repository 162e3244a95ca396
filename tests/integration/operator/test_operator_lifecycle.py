"""The operator in-process (kopf's runner) against the real control plane: kwok plays the nodes and pods."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import wait_for

pytestmark = pytest.mark.controlplane
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tweets-lora.yaml"
NS = "operator-tests"


@pytest.fixture(scope="module")
def operator(control_plane: Any) -> Iterator[Any]:
    from kopf.testing import KopfRunner

    os.environ["KUBECONFIG"] = str(control_plane.kubeconfig)
    os.environ["FINETUNE_OPERATOR_METRICS_PORT"] = "0"
    control_plane.kubectl("create", "namespace", NS, check=False)
    args = ["run", "--standalone", "--all-namespaces", "-m", "finetune_operator.handlers.main"]
    with KopfRunner(args, timeout=180) as runner:
        time.sleep(2)
        yield control_plane
    assert runner.exception is None, runner.output[-3000:]


def _job(name: str, **labels: str) -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"] = {"name": name, "namespace": NS, "labels": labels}
    return doc


def _get(plane: Any, kind: str, name: str, namespace: str = NS) -> dict[str, Any] | None:
    out = plane.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    try:
        return dict(json.loads(out))
    except ValueError:
        return None


def _wait(probe: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    return wait_for(probe, what, timeout)


def _phase(plane: Any, name: str, namespace: str = NS) -> str:
    return str(((_get(plane, "ftj", name, namespace) or {}).get("status") or {}).get("phase", ""))


def test_readme_example_runs_to_succeeded(operator: Any) -> None:
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(_job("happy")))
    job = _wait(lambda: _get(operator, "job", "happy"), "the Job")
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["securityContext"]["runAsNonRoot"] is True
    cm = _get(operator, "configmap", "happy-config")
    assert cm is not None and "tweets" in cm["data"]["finetunejob.yaml"]
    owner = job["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "FineTuneJob" and owner["name"] == "happy" and owner["controller"] is True
    seen = set()

    def done() -> bool:
        seen.add(_phase(operator, "happy"))
        return "Succeeded" in seen

    _wait(done, "phase Succeeded", timeout=180)
    assert "Running" in seen or "Initializing" in seen, seen
    status = _get(operator, "ftj", "happy")["status"]  # type: ignore[index]
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
    doc = _job("bad-data", **{"finetune.dev/test-exit-code": "11"})
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    _wait(lambda: _phase(operator, "bad-data") == "Failed", "phase Failed", timeout=180)
    status = _get(operator, "ftj", "bad-data")["status"]  # type: ignore[index]
    assert status["failure"]["reason"] == "DataError" and status["failure"]["exitCode"] == 11
    assert status["attempts"] == 1, "a data error must not be retried"


def test_preemption_exit_is_retried(operator: Any) -> None:
    doc = _job("preempted", **{"finetune.dev/test-exit-code": "14"})
    doc["spec"]["retries"] = 1
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    _wait(lambda: _phase(operator, "preempted") == "Failed", "phase Failed after retries", timeout=240)
    status = _get(operator, "ftj", "preempted")["status"]  # type: ignore[index]
    assert status["attempts"] == 2, "a preempted trainer is retried (retries: 1)"
    assert status["failure"]["reason"] == "Preempted"


def test_invalid_spec_is_rejected_before_any_pod(operator: Any) -> None:
    doc = _job("overlap")
    doc["spec"]["output"]["uri"] = "s3://data/tweets/"  # overlaps the dataset: only the deeper checks see it
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    _wait(lambda: _phase(operator, "overlap") == "Failed", "phase Failed", timeout=30)
    status = _get(operator, "ftj", "overlap")["status"]  # type: ignore[index]
    assert status["failure"]["reason"] == "InvalidSpec" and "spec.output.uri" in status["failure"]["message"]
    assert _get(operator, "job", "overlap") is None, "no Job may exist for an invalid spec"


def _pods(plane: Any, name: str) -> list[dict[str, Any]]:
    out = plane.kubectl("get", "pods", "-n", NS, "-l", f"finetune.dev/job={name}", "-o", "json")
    return list(json.loads(out)["items"])


def test_suspend_and_resume(operator: Any) -> None:
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(_job("pausable", **{"finetune.dev/test-hold": "true"})))
    _wait(lambda: _phase(operator, "pausable") == "Running", "phase Running", timeout=180)
    operator.kubectl("patch", "ftj", "pausable", "-n", NS, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    _wait(lambda: _phase(operator, "pausable") == "Suspended", "phase Suspended", timeout=180)
    job = _get(operator, "job", "pausable")
    assert job is not None and job["spec"]["suspend"] is True
    _wait(
        lambda: (
            not json.loads(operator.kubectl("get", "pods", "-n", NS, "-l", "finetune.dev/job=pausable", "-o", "json"))[
                "items"
            ]
        ),
        "pods gone",
    )
    operator.kubectl("patch", "ftj", "pausable", "-n", NS, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    _wait(lambda: _phase(operator, "pausable") == "Running", "phase Running again", timeout=180)
    conds = {c["type"]: c["status"] for c in _get(operator, "ftj", "pausable")["status"]["conditions"]}  # type: ignore[index]
    assert conds["Suspended"] == "False" and conds["Running"] == "True"


def test_deletion_cascades(operator: Any) -> None:
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(_job("doomed", **{"finetune.dev/test-hold": "true"})))
    _wait(lambda: _get(operator, "job", "doomed"), "the Job")
    operator.kubectl("delete", "ftj", "doomed", "-n", NS, "--wait=true")
    for kind, name in (
        ("job", "doomed"),
        ("configmap", "doomed-config"),
        ("role", "doomed-trainer"),
        ("serviceaccount", "doomed-trainer"),
    ):
        _wait(
            lambda kind=kind, name=name: _get(operator, kind, name) is None,
            f"{kind}/{name} to be garbage-collected",
            timeout=60,
        )


def test_two_nodes_get_an_indexed_job_and_a_headless_service(operator: Any) -> None:
    doc = _job("two-nodes")
    doc["spec"]["resources"] = {"gpus": 2, "nodes": 2}
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    job = _wait(lambda: _get(operator, "job", "two-nodes"), "the Job")
    svc = _get(operator, "service", "two-nodes")
    assert svc is not None and svc["spec"]["clusterIP"] == "None"
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2
    pods = _wait(
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
    _wait(lambda: _phase(operator, "two-nodes") == "Succeeded", "phase Succeeded", timeout=180)


def test_kueue_queue_creates_the_job_suspended_for_admission(operator: Any) -> None:
    doc = _job("queued")
    doc["spec"]["scheduling"] = {"queueName": "gpu-team"}
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    job = _wait(lambda: _get(operator, "job", "queued"), "the Job")
    assert job["spec"]["suspend"] is True and job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-team"
    _wait(lambda: ((_get(operator, "ftj", "queued") or {}).get("status") or {}).get("conditions"), "status")
    status = _get(operator, "ftj", "queued")["status"]  # type: ignore[index]
    assert (
        status["phase"] == "Pending" and {c["type"]: c["reason"] for c in status["conditions"]}["Validated"] == "Queued"
    )
    # Kueue admits by unsuspending the Job; the operator follows what it observes.
    operator.kubectl("patch", "job", "queued", "-n", NS, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    _wait(lambda: _phase(operator, "queued") == "Succeeded", "phase Succeeded after admission", timeout=180)


def test_ttl_after_finished_deletes_the_job(operator: Any) -> None:
    doc = _job("short-lived")
    doc["spec"]["ttlAfterFinished"] = "20s"  # long enough to see Succeeded before it goes
    operator.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    _wait(lambda: _phase(operator, "short-lived") == "Succeeded", "phase Succeeded", timeout=180)
    _wait(lambda: _get(operator, "ftj", "short-lived") is None, "ttlAfterFinished to delete it", timeout=180)
    _wait(lambda: _get(operator, "job", "short-lived") is None, "the Job to be garbage-collected", timeout=180)
