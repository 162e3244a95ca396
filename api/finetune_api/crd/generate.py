"""Build the FineTuneJob CRD from the spec models. `finetune crd` prints it; crds/ holds a copy a test keeps equal."""

from __future__ import annotations

import typing
from typing import Any

import yaml
from pydantic import BaseModel

from .. import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from ..spec.job import FineTuneJobSpec, resource_rules
from ..spec.status import FineTuneJobStatus
from .structural import to_structural

HEADER = (
    "# Generated from api/finetune_api/spec by `finetune crd`; do not edit by hand.\n"
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


def build_crd() -> dict[str, Any]:
    spec_schema = model_schema(FineTuneJobSpec)
    status_schema = model_schema(FineTuneJobStatus)
    status_schema["properties"]["conditions"].update(
        {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
    )
    root = {
        "type": "object",
        "description": (
            f"A {KIND} fine-tunes a pretrained language model on a dataset with one adaptation method "
            "and publishes the result, with a manifest, to object storage."
        ),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object: finetune.dev/v1alpha1."},
            "kind": {"type": "string", "description": f"Kind of this object: {KIND}."},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
        "x-kubernetes-validations": [r.to_crd() for r in resource_rules()],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": ["all", "finetune"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


class _Dumper(yaml.SafeDumper):
    """Block style, long descriptions folded only at spaces, key order as built."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def render_crd_yaml() -> str:
    return HEADER + yaml.dump(build_crd(), Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=False)
