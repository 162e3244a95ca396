"""Evaluate the CRD's own CEL rules locally, so `finetune validate` agrees with the API server.

The rules are read from the generated CRD schema (not from a second copy), and evaluated on the
document with the schema's defaults applied, as the API server does before validating.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import celpy
from celpy.adapter import json_to_cel

from .problems import Problem

Schema = dict[str, Any]


@lru_cache(maxsize=256)
def _program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def evaluate(schema: Schema, data: Any, path: str) -> Iterator[Problem]:
    """Walk schema and data together; yield a Problem for each rule that evaluates to false."""
    for entry in schema.get("x-kubernetes-validations", []):
        rule = entry["rule"]
        if "oldSelf" in rule:
            continue  # transition rules compare with a stored object; there is none locally
        try:
            ok = bool(_program(rule).evaluate({"self": json_to_cel(data)}))
        except Exception:  # noqa: BLE001, S112
            continue
        if not ok:
            where = path + entry.get("fieldPath", "")
            if not entry.get("fieldPath"):
                # Our rule messages start with the field they are about; use it when the rule sits
                # on a parent (e.g. metadata.name, whose schema the CRD cannot describe).
                head = entry["message"].split(" ", 1)[0]
                where = head if head.startswith(("metadata.", "spec")) else where
            yield Problem(where or "(document)", entry["message"], source="cel")
    if isinstance(data, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in data:
                yield from evaluate(sub, data[name], f"{path}.{name}" if path else name)
    elif isinstance(data, list) and "items" in schema:
        for i, item in enumerate(data):
            yield from evaluate(schema["items"], item, f"{path}[{i}]")
