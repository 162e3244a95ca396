"""Validate one FineTuneJob document: strict schema, then its CEL rules, then the deeper checks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from .. import API_VERSION, EXPERIMENT_KIND, KIND
from ..v1alpha1.job import FineTuneJob
from .cel_rules import evaluate
from .checks import run_checks
from .problems import Problem
from .schema_errors import problems_from


@dataclass
class JobValidation:
    job: FineTuneJob | None = None  # set when the document parses, even with problems of CEL or the checks
    problems: list[Problem] = field(default_factory=list)


@lru_cache(maxsize=1)
def _crd_schema() -> dict[str, Any]:
    from ..crd import build_crd

    schema: dict[str, Any] = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def check_job(doc: dict[str, Any]) -> JobValidation:
    out = JobValidation()
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != KIND:
        out.problems.append(
            Problem(
                "apiVersion/kind",
                f"is {doc.get('apiVersion')!r}/{doc.get('kind')!r}",
                f"set apiVersion: {API_VERSION} and kind: {KIND} (or {EXPERIMENT_KIND})",
            )
        )
        return out
    try:
        # Strict JSON-mode validation matches the API server: "16" is not an integer, "yes" not a boolean.
        job = FineTuneJob.model_validate_json(json.dumps(doc, default=str), strict=True)
    except ValidationError as exc:
        out.problems.extend(problems_from(exc, FineTuneJob))
        # Rules across fields still tell the user something useful about a partly valid document.
        out.problems.extend(_dedupe(evaluate(_crd_schema(), doc, ""), out.problems))
        return out
    out.job = job
    # The API server applies schema defaults before CEL; the dump with defaults is that object.
    defaulted = job.model_dump(by_alias=True, exclude_none=True, mode="json")
    out.problems.extend(evaluate(_crd_schema(), defaulted, ""))
    out.problems.extend(run_checks(job.spec))
    return out


def _dedupe(new: Any, existing: list[Problem]) -> list[Problem]:
    seen = {p.path for p in existing}
    return [p for p in new if p.path not in seen]
