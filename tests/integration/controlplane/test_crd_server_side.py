"""The generated CRD on a real kube-apiserver: examples accepted, malformed specs rejected by schema and CEL,
`kubectl explain` teaches, printer columns show, and a started job's spec is immutable except `suspend`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.corpus.malformed import CASES, Case

pytestmark = pytest.mark.controlplane
EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.yaml"))
SERVER_CASES = [c for c in CASES if c.server_rejects]


def _apply(plane: Any, doc: dict[str, Any], *extra: str) -> tuple[bool, str]:
    out = plane.kubectl("apply", "-f", "-", *extra, stdin=json.dumps(doc), check=False)
    return ("created" in out or "configured" in out or "unchanged" in out), out


@pytest.fixture(scope="module")
def plane(control_plane: Any) -> Any:
    for ns in ("ml-team", "crd-tests"):
        control_plane.kubectl("create", "namespace", ns, check=False)
    return control_plane


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_is_accepted(plane: Any, path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    ok, out = _apply(plane, doc, "-n", doc["metadata"].get("namespace", "crd-tests"), "--dry-run=server")
    assert ok, out


@pytest.mark.parametrize("case", SERVER_CASES, ids=[c.id for c in SERVER_CASES])
def test_malformed_spec_is_rejected_by_the_api_server(plane: Any, case: Case) -> None:
    ok, out = _apply(plane, case.document(), "-n", "crd-tests", "--dry-run=server")
    assert not ok, f"{case.id} was accepted by the API server"
    leaf = case.field.rsplit(".", 1)[-1]
    assert case.field in out or leaf in out, f"{case.id}: the server's error does not name {case.field}:\n{out}"


def test_credentials_in_a_url_are_refused_without_being_echoed(plane: Any) -> None:
    doc = yaml.safe_load((EXAMPLES[0].parent / "tweets-lora.yaml").read_text())
    doc["spec"]["s3"] = {"endpoint": "http://minio:hunter2@minio.storage:9000"}
    doc["spec"]["output"]["uri"] = "s3://key:hunter2@models/out/x/"
    ok, out = _apply(plane, doc, "-n", "crd-tests", "--dry-run=server")
    assert not ok and out.count("must not carry credentials") == 2 and "spec.s3.secretRef" in out, out
    assert "hunter2" not in out, f"the API server echoed the password:\n{out}"


def test_kubectl_explain_teaches_the_method_field(plane: Any) -> None:
    out = plane.kubectl("explain", "ftj.spec.method")
    assert "low-rank adapters" in out and "virtualTokens" in out and "targetModules" in out


def test_printer_columns_and_immutability_once_started(plane: Any) -> None:
    doc = yaml.safe_load((EXAMPLES[0].parent / "tweets-lora.yaml").read_text())
    doc["metadata"]["name"] = "columns"
    ok, out = _apply(plane, doc, "-n", "crd-tests")
    assert ok, out
    status = {
        "status": {
            "phase": "Running",
            "startTime": "2026-01-01T00:00:00Z",
            "progress": {"step": 84, "totalSteps": 200, "percent": 42, "summary": "42% 84/200"},
            "metrics": {"evalMetric": 0.71, "metricName": "accuracy"},
        }
    }
    plane.kubectl(
        "patch", "ftj", "columns", "-n", "crd-tests", "--subresource=status", "--type=merge", "-p", json.dumps(status)
    )
    table = plane.kubectl("get", "ftj", "columns", "-n", "crd-tests")
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "TASK", "METHOD", "MODEL", "PHASE", "PROGRESS", "METRIC", "AGE"]
    assert "sequence-classification" in row and "lora" in row and "Running" in row and "42%" in row and "0.71" in row
    # Started: the spec is frozen, except suspend.
    changed = plane.kubectl(
        "patch", "ftj", "columns", "-n", "crd-tests", "--type=merge", "-p", '{"spec":{"method":{"r":8}}}', check=False
    )
    assert "immutable once the job has started" in changed
    suspended = plane.kubectl(
        "patch", "ftj", "columns", "-n", "crd-tests", "--type=merge", "-p", '{"spec":{"suspend":true}}', check=False
    )
    assert "patched" in suspended, suspended


def test_map_fields_keep_their_entries(plane: Any) -> None:
    """A nodeSelector (keys with a pattern) survives the structural schema: neither pruned nor refused."""
    doc = yaml.safe_load((EXAMPLES[0].parent / "tweets-lora.yaml").read_text())
    doc["metadata"]["name"] = "with-a-map"
    doc["spec"]["scheduling"] = {"nodeSelector": {"finetune.dev/pool": "a100", "kubernetes.io/os": "linux"}}
    ok, out = _apply(plane, doc, "-n", "crd-tests", "--validate=strict")
    assert ok, out
    stored = json.loads(plane.kubectl("get", "ftj", "with-a-map", "-n", "crd-tests", "-o", "json"))
    assert stored["spec"]["scheduling"]["nodeSelector"] == {"finetune.dev/pool": "a100", "kubernetes.io/os": "linux"}
