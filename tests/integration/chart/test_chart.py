"""The Helm chart: lint-clean, secure when rendered, one CRD source, a values schema that bites,
and a dashboard that queries only metrics the code exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "finetune-operator"
KUBE_VERSION = "1.36.3"


@pytest.fixture(scope="module")
def helm() -> str:
    from tests.controlplane.cluster import build

    return str(build() / "helm")


def _template(helm: str, *sets: str) -> list[dict[str, Any]]:
    args = [helm, "template", "ft", str(CHART), "-n", "finetune-system", "--kube-version", KUBE_VERSION]
    for s in sets:
        args += ["--set", s]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_lint_is_clean(helm: str) -> None:
    out = subprocess.run(
        [helm, "lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout


@pytest.mark.parametrize(
    "sets",
    [
        (),
        (
            "watchNamespaces={team-a,team-b}",
            "metrics.serviceMonitor.enabled=true",
            "metrics.podMonitor.enabled=true",
            "image.digest=sha256:" + "a" * 64,
            "crds.keep=false",
            "tracking.mlflow.uri=http://mlflow.mlops:5000",
        ),
    ],
    ids=["defaults", "custom"],
)
def test_rendered_objects_are_secure(helm: str, sets: tuple[str, ...]) -> None:
    objs = _template(helm, *sets)
    kinds = {o["kind"] for o in objs}
    assert {
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Service",
        "CustomResourceDefinition",
    } <= kinds
    deploy = next(o for o in objs if o["kind"] == "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    assert (
        pod["securityContext"]["runAsNonRoot"] is True
        and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    )
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"] and container["readinessProbe"]
    role = next(o for o in objs if o["kind"] == "ClusterRole")
    for rule in role["rules"]:
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], f"wildcard in {rule}"
    assert not any("secrets" in r["resources"] for r in role["rules"]), "the operator never reads Secrets"
    if sets:
        assert "--namespace=team-a" in container["args"] and "--all-namespaces" not in container["args"]
        assert "@sha256:" in container["image"]
        assert {"ServiceMonitor", "PodMonitor"} <= kinds
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["FINETUNE_OPERATOR_MLFLOW_URI"] == "http://mlflow.mlops:5000", "the operator-wide MLflow default"


@pytest.mark.parametrize("name", ["finetunejob", "finetuneexperiment"])
def test_chart_crd_is_the_generated_one(helm: str, name: str) -> None:
    assert (CHART / "files" / f"{name}.yaml").read_text() == (REPO / "crds" / f"{name}.yaml").read_text(), (
        "run `make crd`"
    )
    crd = next(
        o
        for o in _template(helm)
        if o["kind"] == "CustomResourceDefinition" and o["metadata"]["name"] == f"{name}s.finetune.dev"
    )
    generated = yaml.safe_load((REPO / "crds" / f"{name}.yaml").read_text())
    assert crd["spec"] == generated["spec"]
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


@pytest.mark.parametrize(
    "bad",
    [
        "replicaCount=0",
        "image.pullPolicy=Sometimes",
        "bogus=1",
        "trainer.defaultMemory=lots",
        "image.digest=latest",
        "tracking.mlflow.uri=mlflow:5000",
    ],
)
def test_values_schema_rejects_bad_values(helm: str, bad: str) -> None:
    args = [helm, "template", "ft", str(CHART), "--kube-version", KUBE_VERSION, "--set", bad]
    out = subprocess.run(args, capture_output=True, text=True, check=False)
    assert out.returncode != 0 and "schema" in out.stderr.lower(), out.stderr


def test_dashboard_queries_only_exported_metrics() -> None:
    from finetune_operator.metrics import OperatorMetrics
    from finetune_trainer.observability.prometheus import PrometheusSink

    exported: set[str] = set()
    for registry in (PrometheusSink("ns", "job", port=0).registry, OperatorMetrics().registry):
        for family in registry.collect():
            exported |= {sample.name for sample in family.samples} | {family.name}
            if family.type == "counter":  # a labelled counter has no samples until first used
                exported.add(family.name + "_total")
            if family.type == "histogram":  # nor has a labelled histogram
                exported |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count")}
    dashboard = json.loads((CHART / "files" / "dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]] + [
        v.get("query", "") for v in dashboard["templating"]["list"]
    ]
    used = {m for e in exprs for m in re.findall(r"\b(finetune_[a-z_]+)", e)}
    assert used, "the dashboard queries nothing"
    assert used <= exported, f"the dashboard queries metrics nobody exports: {used - exported}"
