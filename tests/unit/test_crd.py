"""The committed CRD is exactly what the spec generates, and it is a well-formed structural schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from finetune_api.crd import build_crd, render_crd_yaml
from finetune_api.crd.generate import build_experiment_crd
from finetune_api.v1alpha1.method import METHOD_FIELDS, MethodSpec
from finetune_api.v1alpha1.task import TASK_FIELDS, TaskSpec

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "finetunejob.yaml"
EXPERIMENT_CRD_FILE = CRD_FILE.with_name("finetuneexperiment.yaml")
BUILDERS = {"job": build_crd, "experiment": build_experiment_crd}


def _schema(resource: str = "job") -> dict[str, Any]:
    schema: dict[str, Any] = BUILDERS[resource]()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("resource", ["job", "experiment"])
def test_committed_crd_matches_the_spec(resource: str) -> None:
    path = CRD_FILE if resource == "job" else EXPERIMENT_CRD_FILE
    assert path.read_text() == render_crd_yaml(resource), f"crds/{path.name} is stale: run `make crd`"


@pytest.mark.parametrize("resource", ["job", "experiment"])
def test_schema_is_structural(resource: str) -> None:
    for path, node in _walk(_schema(resource)):
        for banned in ("$ref", "anyOf", "oneOf", "allOf", "$defs", "title"):
            assert banned not in node, f"{path} has {banned}"
        assert "type" in node, f"{path} has no type"
        if "properties" in node:
            assert "additionalProperties" not in node, path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True and "minimum" in node, path


@pytest.mark.parametrize("resource", ["job", "experiment"])
def test_every_spec_field_is_described(resource: str) -> None:
    for path, node in _walk(_schema(resource)["properties"]["spec"], "spec"):
        if path.endswith("[]") or path.endswith("{}"):
            continue
        assert node.get("description", "").strip(), f"{path} has no description for `kubectl explain`"


@pytest.mark.parametrize("resource", ["job", "experiment"])
def test_every_string_and_list_is_bounded(resource: str) -> None:
    # The API server's CEL cost estimator rejects rules over unbounded data.
    for path, node in _walk(_schema(resource)["properties"]["spec"], "spec"):
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node, f"{path} is an unbounded string"
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path} is an unbounded list"


def test_cel_rules_for_method_and_task_parameters_are_generated() -> None:
    spec = _schema()["properties"]["spec"]["properties"]
    method_rules = {r["fieldPath"] for r in spec["method"]["x-kubernetes-validations"]}
    assert method_rules == {f".{f}" for f in METHOD_FIELDS}
    task_rules = {r["fieldPath"] for r in spec["task"]["x-kubernetes-validations"]}
    assert task_rules == {f".{f}" for f in TASK_FIELDS}
    aliases = {f.alias for f in MethodSpec.model_fields.values()} | {f.alias for f in TaskSpec.model_fields.values()}
    assert set(METHOD_FIELDS) | set(TASK_FIELDS) <= aliases, "the applicability tables name fields that do not exist"


def test_printer_columns_status_and_names() -> None:
    version = build_crd()["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Task",
        "Method",
        "Model",
        "Phase",
        "Progress",
        "Metric",
        "Age",
    ]
    assert version["subresources"] == {"status": {}}
    assert build_crd()["spec"]["names"]["shortNames"] == ["ftj"]


def test_defaults_reach_nested_objects() -> None:
    spec = _schema()["properties"]["spec"]["properties"]
    assert spec["resources"]["default"] == {}
    assert spec["resources"]["properties"]["gpus"]["default"] == 0
    assert spec["evaluation"]["properties"]["baseline"]["default"] is True
    # No default may make "exactly one of" rules fire: epochs and maxSteps have none.
    assert "default" not in spec["training"]["properties"]["epochs"]
    assert "default" not in spec["training"]["properties"]["maxSteps"]


def test_immutability_rule_covers_every_spec_field_but_suspend() -> None:
    rules = _schema()["x-kubernetes-validations"]
    immutable = next(r for r in rules if "oldSelf" in r["rule"])
    for field in _schema()["properties"]["spec"]["properties"]:
        assert (f"self.spec.{field} " in immutable["rule"] or f"self.spec.{field})" in immutable["rule"]) == (
            field != "suspend"
        ), field


def test_experiment_printer_columns_names_and_list_keys() -> None:
    crd = build_experiment_crd()
    version = crd["spec"]["versions"][0]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Variants", "Succeeded", "Phase", "Best", "Metric", "Age"]
    assert crd["spec"]["names"]["shortNames"] == ["ftx"] and version["subresources"] == {"status": {}}
    spec = _schema("experiment")["properties"]["spec"]["properties"]
    # Two variants of one name (or two grid axes over one field) are refused by the API server itself.
    assert spec["variants"]["x-kubernetes-list-map-keys"] == ["name"]
    assert spec["grid"]["x-kubernetes-list-map-keys"] == ["path"]
    # The template is a whole FineTuneJob spec, with that spec's own rules.
    assert spec["template"]["x-kubernetes-validations"] == _schema()["properties"]["spec"]["x-kubernetes-validations"]


@pytest.mark.parametrize("doc", list(yaml.safe_load_all(CRD_FILE.read_text())))
def test_crd_file_is_one_valid_yaml_document(doc: dict[str, Any]) -> None:
    assert doc["kind"] == "CustomResourceDefinition"


@pytest.mark.parametrize("resource", ["job", "experiment"])
def test_spec_reference_is_current(resource: str) -> None:
    from finetune_api.crd.reference import TITLES, render_reference

    doc = Path(__file__).resolve().parents[2] / "docs" / TITLES[resource][2]
    assert doc.read_text() == render_reference(resource), f"docs/{doc.name} is stale: run `make crd`"


ALLOWED_KEYS = {
    "type", "description", "properties", "required", "items", "additionalProperties", "enum", "default", "format",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems",
    "maxProperties", "pattern", "nullable", "x-kubernetes-validations", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
}  # fmt: skip


@pytest.mark.parametrize("resource", ["job", "experiment"])
def test_schema_uses_only_keys_the_api_server_accepts(resource: str) -> None:
    # e.g. patternProperties and propertyNames are valid JSON Schema but forbidden in a CRD.
    for path, node in _walk(_schema(resource)):
        assert set(node) <= ALLOWED_KEYS, f"{path}: {set(node) - ALLOWED_KEYS}"
