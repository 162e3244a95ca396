"""The operator, authenticated as a ServiceAccount bound only to the RBAC the Helm chart renders,
runs the happy path; `helm install` works against the real API server."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.operator.in_process import README_EXAMPLE, ftj_phase, get_object, in_process_operator, wait

pytestmark = pytest.mark.controlplane
REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "finetune-operator"
NS = "chart-rbac"


def _helm(plane: Any, *args: str) -> str:
    helm = str(plane.bin / "helm")
    out = subprocess.run([helm, f"--kubeconfig={plane.kubeconfig}", *args], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_helm_install_and_operator_under_chart_rbac(control_plane: Any) -> None:
    plane = control_plane
    # The fixture installed the CRD already; the chart adopts nothing it did not create.
    _helm(
        plane,
        "install",
        "ft",
        str(CHART),
        "-n",
        "finetune-system",
        "--create-namespace",
        "--set",
        "crds.install=false",
        "--wait=false",
    )
    assert "deployed" in _helm(plane, "status", "ft", "-n", "finetune-system")
    role = json.loads(plane.kubectl("get", "clusterrole", "ft-finetune-operator", "-o", "json"))
    rendered = [d for d in yaml.safe_load_all(_helm(plane, "get", "manifest", "ft", "-n", "finetune-system")) if d]
    assert role["rules"] == next(d for d in rendered if d["kind"] == "ClusterRole")["rules"], (
        "the installed rules are the chart's"
    )

    token = plane.kubectl("create", "token", "ft-finetune-operator", "-n", "finetune-system").strip()
    sa_kubeconfig = plane.write_kubeconfig("system:serviceaccount:finetune-system:ft-finetune-operator", token)
    assert (
        plane.kubectl("auth", "can-i", "get", "secrets", "-A", kubeconfig=sa_kubeconfig, check=False)
        .strip()
        .startswith("no")
    )

    doc = yaml.safe_load(README_EXAMPLE.read_text())
    doc["metadata"]["namespace"] = NS
    with in_process_operator(plane, NS, kubeconfig=sa_kubeconfig, timeout=60) as runner:
        plane.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
        wait(
            lambda: ftj_phase(plane, "tweets-lora", NS) == "Succeeded",
            "phase Succeeded under the chart's RBAC",
            timeout=180,  # a busy 2-core CI machine: the Job controller alone backs off ~10 s per retry
        )
    # Match the API's refusal itself, not a bare "403": log timestamps carry milliseconds like ",403".
    denied = re.search(r"forbidden|APIForbiddenError|['\"]code['\"]: 403\b", runner.output, re.IGNORECASE)
    assert denied is None, runner.output[-3000:]
    assert get_object(plane, "job", "tweets-lora", NS) is not None
