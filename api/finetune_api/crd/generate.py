"""Build the CRDs (FineTuneJob, FineTuneExperiment) from the spec models.

`finetune crd` prints them; crds/ holds copies a test keeps equal.
"""

from __future__ import annotations

import typing
from typing import Any

import yaml
from pydantic import BaseModel

from .. import (
    EXPERIMENT_KIND,
    EXPERIMENT_PLURAL,
    EXPERIMENT_SHORT_NAMES,
    EXPERIMENT_SINGULAR,
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
)
from ..v1alpha1.experiment import FineTuneExperimentSpec, experiment_resource_rules
from ..v1alpha1.experiment_status import FineTuneExperimentStatus
from ..v1alpha1.job import FineTuneJobSpec, resource_rules
from ..v1alpha1.status import FineTuneJobStatus
from .structural import to_structural

HEADER = (
    "# Generated from api/finetune_api/v1alpha1 by `finetune crd`; do not edit by hand.\n"
    "# tests/unit/test_crd.py fails when this file and the spec models differ.\n"
)

PRINTER_COLUMNS = [
    {"name": "Task", "type": "string", "jsonPath": ".spec.task.type"},
    {"name": "Method", "type": "string", "jsonPath": ".spec.method.type"},
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.uri"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Progress", "type": "string", "jsonPath": ".status.progress.summary"},
    {"name": "Metric", "type": "number", "jsonPath": ".status.metrics.evalMetric", "format": "float"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
EXPERIMENT_PRINTER_COLUMNS = [
    {"name": "Variants", "type": "integer", "jsonPath": ".status.variantCount"},
    {"name": "Succeeded", "type": "integer", "jsonPath": ".status.succeeded"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Best", "type": "string", "jsonPath": ".status.best.variant"},
    {"name": "Metric", "type": "number", "jsonPath": ".status.best.metric", "format": "float"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural schema of one model, with `default: {}` on sub-objects that default to empty."""
    schema = to_structural(model.model_json_schema(by_alias=True, mode="validation"))
    _default_empty_objects(model, schema)
    return schema


def _default_empty_objects(model: type[BaseModel], schema: dict[str, Any]) -> None:
    # The API server applies nested defaults only inside objects that exist; `default: {}` makes
    # e.g. spec.resources exist so CEL rules can read spec.resources.gpus as the trainer will.
    hints = typing.get_type_hints(model)
    for name, info in model.model_fields.items():
        alias = info.alias or name
        sub = schema.get("properties", {}).get(alias)
        if sub is None:
            continue
        annotation = hints[name]
        candidates = [
            a for a in (annotation, *typing.get_args(annotation)) if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        for sub_model in candidates:
            if info.default_factory is sub_model:
                sub["default"] = {}
            _default_empty_objects(sub_model, sub)
        if sub.get("type") == "array" and "items" in sub:
            for arg in typing.get_args(annotation):
                for item in typing.get_args(arg) or (arg,):
                    if isinstance(item, type) and issubclass(item, BaseModel):
                        _default_empty_objects(item, sub["items"])


def _list_map(schema: dict[str, Any], key: str) -> None:
    # The API server itself then refuses two items with one key (two conditions of a type, two variants of a name).
    schema.update({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key]})


def _crd(  # noqa: PLR0913 - the parts of a CRD, as its manifest lists them
    names: tuple[str, str, str, tuple[str, ...]],
    description: str,
    spec: type[BaseModel],
    status: type[BaseModel],
    rules: list[dict[str, Any]],
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    kind, plural, singular, short = names
    spec_schema = model_schema(spec)
    status_schema = model_schema(status)
    _list_map(status_schema["properties"]["conditions"], "type")
    root = {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object: finetune.dev/v1alpha1."},
            "kind": {"type": "string", "description": f"Kind of this object: {kind}."},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
        "x-kubernetes-validations": rules,
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
                "shortNames": list(short),
                "categories": ["all", "finetune"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def build_crd() -> dict[str, Any]:
    return _crd(
        (KIND, PLURAL, SINGULAR, SHORT_NAMES),
        f"A {KIND} fine-tunes a pretrained language model on a dataset with one adaptation method "
        "and publishes the result, with a manifest, to object storage.",
        FineTuneJobSpec,
        FineTuneJobStatus,
        [r.to_crd() for r in resource_rules()],
        PRINTER_COLUMNS,
    )


def build_experiment_crd() -> dict[str, Any]:
    crd = _crd(
        (EXPERIMENT_KIND, EXPERIMENT_PLURAL, EXPERIMENT_SINGULAR, EXPERIMENT_SHORT_NAMES),
        f"A {EXPERIMENT_KIND} runs one {KIND} per variant of a template (methods or settings on the same data), "
        "compares their metric and cost side by side, and names (and optionally promotes) the best.",
        FineTuneExperimentSpec,
        FineTuneExperimentStatus,
        [r.to_crd() for r in experiment_resource_rules()],
        EXPERIMENT_PRINTER_COLUMNS,
    )
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    _list_map(root["properties"]["spec"]["properties"]["variants"], "name")
    _list_map(root["properties"]["spec"]["properties"]["grid"], "path")
    _list_map(root["properties"]["status"]["properties"]["variants"], "name")
    return crd


RESOURCES = {"job": build_crd, "experiment": build_experiment_crd}


class _Dumper(yaml.SafeDumper):
    """Block style, long descriptions folded only at spaces, key order as built."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def render_crd_yaml(resource: str = "job") -> str:
    return HEADER + yaml.dump(RESOURCES[resource](), Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=False)
