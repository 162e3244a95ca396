"""Pod Security for real: every example's Job runs in a namespace that enforces the restricted level,
and the API server's PodSecurity admission admits its pods; a pod template that breaks the level is
refused there (the check bites)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from finetune_api.resolve import resolve_job
from finetune_api.validation import validate_file
from finetune_operator.experiment import report_job
from finetune_operator.render import render
from finetune_operator.settings import OperatorSettings

pytestmark = pytest.mark.controlplane
EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.yaml"))
NS = "restricted"


@pytest.fixture(scope="module")
def restricted(control_plane: Any) -> str:
    control_plane.kubectl("create", "namespace", NS)
    # The PriorityClasses the examples name, as the cluster admin would have made them.
    for path in EXAMPLES:
        for name in set(re.findall(r"priorityClassName: *([a-z0-9-]+)", path.read_text())):
            control_plane.kubectl("create", "priorityclass", name, "--value=1000", check=False)
    control_plane.kubectl(
        "label", "namespace", NS, "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )  # fmt: skip
    return NS


def _rendered_job(path: Path, name: str) -> dict[str, Any]:
    result = validate_file(path)[0]
    if result.experiment is not None:
        # An experiment's variants render as the FineTuneJob examples do; its own pod is the report step's.
        experiment = result.experiment
        meta = experiment.metadata.model_copy(update={"namespace": NS, "name": name})
        return report_job.job(experiment.model_copy(update={"metadata": meta}), OperatorSettings())
    job = result.job
    assert job is not None
    job = job.model_copy(update={"metadata": job.metadata.model_copy(update={"namespace": NS, "name": name})})
    objects = render(resolve_job(job, pod=OperatorSettings().pod_defaults), OperatorSettings()).objects
    return next(o for o in objects if o["kind"] == "Job")


def _pods_or_refusal(plane: Any, job: str, timeout: float = 60) -> tuple[list[dict[str, Any]], str]:
    """The Job's pods once the Job controller created them, or the FailedCreate event that refused them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = json.loads(plane.kubectl("get", "pods", "-n", NS, "-l", f"job-name={job}", "-o", "json"))["items"]
        if pods:
            return pods, ""
        events = json.loads(plane.kubectl("get", "events", "-n", NS, "-o", "json"))["items"]
        refused = [e["message"] for e in events if e["reason"] == "FailedCreate" and e["involvedObject"]["name"] == job]
        if refused:
            return [], refused[0]
        time.sleep(0.5)
    raise AssertionError(f"neither pods nor a FailedCreate event for Job {job} within {timeout}s")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_pods_pass_restricted_admission(control_plane: Any, restricted: str, path: Path) -> None:
    name = path.stem[:40]
    manifest = _rendered_job(path, name)
    manifest["spec"].pop("suspend", None)
    manifest["metadata"]["labels"].pop("kueue.x-k8s.io/queue-name", None)  # no Kueue on this plane
    control_plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    job = manifest["metadata"]["name"]
    pods, refusal = _pods_or_refusal(control_plane, job)
    assert pods and not refusal, f"{path.name}: PodSecurity refused the trainer pod: {refusal}"
    control_plane.kubectl("delete", "job", job, "-n", NS, "--cascade=foreground", "--wait=false")


def test_a_non_compliant_template_is_refused(control_plane: Any, restricted: str) -> None:
    manifest = _rendered_job(EXAMPLES[0], "breaks-restricted")
    # A pod on its node's network without its capabilities dropped: what the restricted level forbids.
    manifest["spec"]["template"]["spec"]["hostNetwork"] = True
    manifest["spec"]["template"]["spec"]["containers"][0]["securityContext"].pop("capabilities")
    control_plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    pods, refusal = _pods_or_refusal(control_plane, "breaks-restricted")
    assert not pods
    assert 'violates PodSecurity "restricted:latest"' in refusal, refusal
    assert "host namespaces" in refusal and "capabilities" in refusal, refusal
