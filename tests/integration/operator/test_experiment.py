"""FineTuneExperiment on the real control plane: one owned FineTuneJob per variant, never more than
maxParallel at once, a comparison in status as they finish, the report step, and invalid variants refused
before any FineTuneJob exists.

kwok plays the trainer pods. Every pod here is held (label finetune.dev/test-hold) until the test has
written what the trainer would have reported into its FineTuneJob's status; removing the label lets
kwok complete the pod, as a trainer that published its output exits 0.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.controlplane.cluster import HOLD_LABEL as HOLD
from tests.integration.operator.in_process import in_process_operator, wait

pytestmark = pytest.mark.controlplane
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tweets-comparison.yaml"
NS = "experiment-tests"
# What each variant's trainer "measured": accuracy, trainable parameters.
REPORTED = {
    "full": (0.70, 22_714_371),
    "layerwise-lr": (0.69, 22_714_371),
    "lora": (0.72, 148_611),
    "prompt-tuning": (0.55, 8_835),
}


@pytest.fixture(scope="module")
def operator(control_plane: Any) -> Iterator[Any]:
    with in_process_operator(control_plane, NS):
        yield control_plane


def _experiment(name: str) -> dict[str, Any]:
    doc = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
    doc["metadata"] = {"name": name, "namespace": NS, "labels": {HOLD: "true"}}
    return dict(doc)


def _json(plane: Any, *args: str) -> Any:
    out = plane.kubectl("get", *args, "-n", NS, "-o", "json", check=False)
    try:
        return json.loads(out)
    except ValueError:
        return None


def _variant_jobs(plane: Any, experiment: str) -> list[dict[str, Any]]:
    listing = _json(plane, "ftj", "-l", f"finetune.dev/experiment={experiment}")
    return list((listing or {}).get("items", []))


def _unfinished(jobs: list[dict[str, Any]]) -> int:
    return sum(1 for j in jobs if (j.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))


def _finish(plane: Any, job: dict[str, Any]) -> None:
    """Report as the trainer does (status.metrics: its fields only), then let kwok complete the held pod.

    status.output is the operator's (pod contract): it appears with phase Succeeded."""
    name, variant = job["metadata"]["name"], job["metadata"]["labels"]["finetune.dev/variant"]
    accuracy, params = REPORTED[variant]
    patch = {
        "status": {
            "metrics": {
                "metricName": "accuracy",
                "evalMetric": accuracy,
                "baselineMetric": 0.41,
                "trainableParameters": params,
                "trainSeconds": 12.5,
                "tokensPerSecond": 900.0,
                "peakMemoryBytes": 1 << 30,
            },
        }
    }
    plane.kubectl("patch", "ftj", name, "-n", NS, "--subresource=status", "--type=merge", "-p", json.dumps(patch))
    _release(plane, f"finetune.dev/job={name}")


def _release(plane: Any, selector: str) -> None:
    pods = wait(lambda: (_json(plane, "pods", "-l", selector) or {}).get("items"), f"pods of {selector}", timeout=120)
    for pod in pods:
        plane.kubectl("label", "pod", pod["metadata"]["name"], "-n", NS, f"{HOLD}-", check=False)


def test_four_variants_run_at_most_two_at_once_and_fill_the_comparison(operator: Any) -> None:
    plane = operator
    plane.kubectl("apply", "-f", "-", stdin=json.dumps(_experiment("methods")))
    experiment = wait(lambda: _json(plane, "ftx", "methods"), "the experiment")
    most = 0
    finished: set[str] = set()
    deadline = time.time() + 420
    while len(finished) < 4 and time.time() < deadline:
        jobs = _variant_jobs(plane, "methods")
        most = max(most, _unfinished(jobs))
        assert most <= 2, f"{_unfinished(jobs)} variants run at once; maxParallel is 2"
        for job in jobs:
            owner = job["metadata"]["ownerReferences"][0]
            assert owner["kind"] == "FineTuneExperiment" and owner["uid"] == experiment["metadata"]["uid"]
            phase = (job.get("status") or {}).get("phase")
            if phase == "Succeeded":
                finished.add(job["metadata"]["name"])
            elif phase == "Running" and not (job["status"].get("metrics") or {}).get("trainableParameters"):
                # A moment with two held and running variants: a third must not have been created.
                assert len(jobs) <= len(finished) + 2, [j["metadata"]["name"] for j in jobs]
                _finish(plane, job)
        time.sleep(0.5)
    assert len(finished) == 4, f"only {sorted(finished)} succeeded"
    assert most == 2, "two variants should have run side by side"
    names = sorted(j["metadata"]["name"] for j in _variant_jobs(plane, "methods"))
    assert names == sorted(f"methods-{v}" for v in REPORTED), "one FineTuneJob per variant, no duplicates"

    # Every variant finished: the report step starts, is held like a trainer pod, and then completes.
    report = wait(lambda: _json(plane, "job", "methods-comparison"), "the report Job", timeout=120)
    (container,) = report["spec"]["template"]["spec"]["containers"]
    assert "finetune_trainer.experiment.step" in container["command"]
    status = wait(
        lambda: (s := (_json(plane, "ftx", "methods") or {}).get("status") or {}).get("best") and s,
        "the best variant in status",
    )
    assert status["phase"] == "Running" and "writing the comparison report" in status["message"]
    _release(plane, "app.kubernetes.io/component=experiment-report")
    status = wait(
        lambda: (s := (_json(plane, "ftx", "methods") or {}).get("status") or {}).get("phase") == "Succeeded" and s,
        "phase Succeeded",
        timeout=180,
    )
    rows = {r["name"]: r for r in status["variants"]}
    assert set(rows) == set(REPORTED) and all(r["phase"] == "Succeeded" for r in rows.values())
    assert rows["lora"]["metric"] == 0.72 and rows["lora"]["trainableParameters"] == 148_611
    assert rows["lora"]["baseline"] == 0.41 and rows["lora"]["tokensPerSecond"] == 900.0
    assert rows["full"]["peakMemoryBytes"] == 1 << 30 and rows["full"]["trainSeconds"] == 12.5
    assert status["best"]["variant"] == "lora" and "runner-up full" in status["best"]["reason"]
    assert status["variantCount"] == 4 and status["succeeded"] == 4 and status["running"] == 0
    assert status["report"]["uri"] == "s3://models/out/tweets-comparison/comparison/"
    assert status["report"]["promoted"] == "s3://models/serving/tweets-sentiment/"
    table = plane.kubectl("get", "ftx", "methods", "-n", NS)
    assert "lora" in table and "0.72" in table and "Succeeded" in table

    # Deleting the experiment deletes its FineTuneJobs (and, through them, their Jobs).
    plane.kubectl("delete", "ftx", "methods", "-n", NS, "--wait=true")
    wait(lambda: not _variant_jobs(plane, "methods"), "the variants to be garbage-collected", timeout=120)


def test_invalid_variant_is_refused_before_any_fine_tune_job(operator: Any) -> None:
    plane = operator
    # Expressible in CEL: the API server itself refuses a method parameter of another method.
    doc = _experiment("bad-param")
    doc["spec"]["variants"][2]["method"]["decay"] = 0.5
    out = plane.kubectl("apply", "-f", "-", stdin=json.dumps(doc), check=False)
    assert "decay" in out and "created" not in out, out
    # Only the merged FineTuneJob shows it: the operator refuses the experiment and creates nothing.
    doc = _experiment("bad-variant")
    doc["spec"]["variants"][3]["method"] = {"type": "prefix-tuning"}
    doc["spec"]["variants"][3]["training"]["gradientCheckpointing"] = True
    plane.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    status = wait(
        lambda: (s := (_json(plane, "ftx", "bad-variant") or {}).get("status") or {}).get("phase") == "Failed" and s,
        "phase Failed",
        timeout=60,
    )
    assert "variant prompt-tuning" in status["message"] and "gradientCheckpointing" in status["message"]
    time.sleep(3)
    assert _variant_jobs(plane, "bad-variant") == [], "no FineTuneJob may exist for an invalid experiment"
