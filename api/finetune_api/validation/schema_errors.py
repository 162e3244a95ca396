"""Pydantic's validation errors rewritten as Problems that name the field and the fix."""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from .problems import Problem, shown


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for item in loc:
        out += f"[{item}]" if isinstance(item, int) else ("." if out else "") + item
    return out or "(document)"


def _model_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that holds the field at `loc` (its parent), for listing allowed fields."""
    model: type[BaseModel] | None = root
    for item in loc[:-1]:
        if model is None:
            return None
        if isinstance(item, int):
            continue
        field = next((f for n, f in model.model_fields.items() if item in (f.alias or n, n)), None)
        if field is None:
            return None
        model = _first_model(typing.get_type_hints(model)[_py_name(model, item)])
    return model


def _py_name(model: type[BaseModel], key: str) -> str:
    return next(n for n, f in model.model_fields.items() if key in (f.alias or n, n))


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def problems_from(error: ValidationError, root: type[BaseModel]) -> list[Problem]:
    problems = []
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        path = _field_path(loc)
        kind = err["type"]
        given = err.get("input")
        if kind == "extra_forbidden":
            parent = _model_at(root, loc)
            allowed = sorted((f.alias or n) for n, f in parent.model_fields.items()) if parent else []
            guess = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            fix = f"did you mean '{guess[0]}'? " if guess else ""
            fix += f"allowed here: {', '.join(allowed)}" if allowed else "remove it"
            problems.append(Problem(path, "unknown field", fix))
        elif kind == "missing":
            problems.append(Problem(path, "required field is missing", f"add {path}"))
        elif kind in ("enum", "literal_error"):
            expected = err.get("ctx", {}).get("expected", "")
            problems.append(Problem(path, f"{shown(given)} is not one of the allowed values", f"use one of {expected}"))
        elif kind == "string_pattern_mismatch":
            problems.append(Problem(path, f"{shown(given)} has a form that is not accepted here", _pattern_hint(path)))
        else:
            msg = err["msg"]
            suffix = f", got {shown(given)}" if given is not None and not isinstance(given, dict | list) else ""
            problems.append(Problem(path, f"{msg[0].lower()}{msg[1:]}{suffix}", "change the value to fit"))
    return problems


def _pattern_hint(path: str) -> str:
    leaf = path.rsplit(".", 1)[-1]
    hints = {
        "uri": "use s3://bucket/prefix/, an absolute or ./relative path, or org/name for a Hub model",
        "train": "use s3://bucket/key.csv or a path to a .jsonl, .json, .csv or .parquet file",
        "eval": "use s3://bucket/key.csv or a path to a .jsonl, .json, .csv or .parquet file",
        "checkpointUri": "use s3://bucket/prefix/ or a path",
        "tokenizerUri": "use s3://bucket/prefix/ or a path",
        "name": "use lowercase letters, digits and '-', starting with a letter (at most 50 characters)",
        "endpoint": "use http(s)://host[:port] without credentials; credentials go in the Secret named by secretRef",
        "maxRuntime": "use a duration such as 6h, 90m or 1h30m",
        "ttlAfterFinished": "use a duration such as 24h or 30m",
        "cpu": "use a Kubernetes quantity such as 8 or 7500m",
        "memory": "use a Kubernetes quantity such as 64Gi",
        "image": "use registry/repository:tag or @sha256:digest",
    }
    if "Column" in leaf or leaf.startswith("labels"):
        return "use a column name without control characters (at most 128 characters)"
    return hints.get(leaf, "see `kubectl explain ftj." + path + "` for the accepted form")
