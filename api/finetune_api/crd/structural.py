"""Turn pydantic's JSON Schema into a Kubernetes structural OpenAPI v3 schema.

Structural schemas have no $ref, no anyOf-with-null for optional fields, no `additionalProperties`
beside `properties`, and OpenAPI 3.0's boolean exclusiveMinimum. Everything else (bounds, enums,
patterns, descriptions, defaults, CEL rules) passes through unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

# propertyNames and patternProperties have no place in a CRD schema; map keys are checked locally
# (pydantic) and by the Job API when the operator renders them. A map's values keep their schema:
# pydantic puts it under patternProperties when the keys have a pattern, and without it as
# additionalProperties the API server would prune every entry (or refuse them, under kubectl's
# strict field validation).
_DROP = {"title", "$defs", "propertyNames"}
Schema = dict[str, Any]


def to_structural(schema: Schema, defs: dict[str, Schema] | None = None) -> Schema:
    defs = defs if defs is not None else schema.get("$defs", {})
    return _convert(schema, defs)


def _resolve(node: Schema, defs: dict[str, Schema]) -> Schema:
    """Inline $ref, allOf-of-one and anyOf-with-null.

    The outer node's keys win, so a field's description replaces its class's docstring.
    """
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        node = {**copy.deepcopy(target), **node}
    if "allOf" in node and len(node["allOf"]) == 1:
        inner = _resolve(node.pop("allOf")[0], defs)
        node = {**inner, **node}
    if "anyOf" in node:
        variants = [v for v in node["anyOf"] if v.get("type") != "null"]
        if len(variants) != 1:
            raise ValueError(f"a structural schema cannot express this union: {node['anyOf']}")
        node.pop("anyOf")
        inner = _resolve(variants[0], defs)
        node = {**inner, **node}
    if node.get("default", 0) is None:
        node.pop("default")
    return node


def _convert(node: Schema, defs: dict[str, Schema]) -> Schema:
    node = _resolve(node, defs)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out["properties"] = {name: _convert(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out["items"] = _convert(value, defs)
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict) and "properties" not in node:
                out["additionalProperties"] = _convert(value, defs)
            # `false` is the default for structural schemas (unknown fields are pruned or, with
            # kubectl's strict field validation, rejected), and may not sit beside `properties`.
        elif key == "patternProperties":
            if "properties" not in node and "additionalProperties" not in node:
                (values,) = value.values()
                out["additionalProperties"] = _convert(values, defs)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = _json_type(out["enum"][0])
    if "properties" in out:
        out.setdefault("type", "object")
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("type", "object")
    return out


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"
