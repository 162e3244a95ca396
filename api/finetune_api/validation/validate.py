"""Validate manifest files: YAML -> schema -> CEL rules -> deeper checks, all problems at once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from .. import API_VERSION, EXPERIMENT_KIND, KIND
from ..spec.job import FineTuneJob
from .cel_rules import evaluate
from .checks import run_checks
from .problems import Problem, Severity
from .schema_errors import problems_from

if TYPE_CHECKING:
    from ..experiment.expand import Variant
    from ..spec.experiment import FineTuneExperiment

MAX_FILE_BYTES = 1 << 20


@dataclass
class ValidationResult:
    source: str
    name: str | None = None
    job: FineTuneJob | None = None
    problems: list[Problem] = field(default_factory=list)
    experiment: FineTuneExperiment | None = None  # set instead of job for a valid FineTuneExperiment
    variants: list[Variant] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == Severity.ERROR]

    @property
    def ok(self) -> bool:
        return not self.errors


@lru_cache(maxsize=1)
def _crd_schema() -> dict[str, Any]:
    from ..crd import build_crd

    schema: dict[str, Any] = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def validate_document(doc: Any, source: str = "<document>") -> ValidationResult:
    result = ValidationResult(source=source)
    if not isinstance(doc, dict):
        result.problems.append(Problem("(document)", "is not a mapping", f"write a {KIND} manifest"))
        return result
    result.name = str((doc.get("metadata") or {}).get("name", "")) or None
    if doc.get("kind") == EXPERIMENT_KIND:
        from .experiment import check_experiment

        checked = check_experiment(doc)
        result.problems, result.experiment, result.variants = checked.problems, checked.experiment, checked.variants
        if not result.ok:
            result.experiment, result.variants = None, []
        return result
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != KIND:
        result.problems.append(
            Problem(
                "apiVersion/kind",
                f"is {doc.get('apiVersion')!r}/{doc.get('kind')!r}",
                f"set apiVersion: {API_VERSION} and kind: {KIND} (or {EXPERIMENT_KIND})",
            )
        )
        return result
    try:
        # Strict JSON-mode validation matches the API server: "16" is not an integer, "yes" not a boolean.
        job = FineTuneJob.model_validate_json(json.dumps(doc, default=str), strict=True)
    except ValidationError as exc:
        result.problems.extend(problems_from(exc, FineTuneJob))
        # Rules across fields still tell the user something useful about a partly valid document.
        result.problems.extend(_dedupe(evaluate(_crd_schema(), doc, ""), result.problems))
        return result
    result.job = job
    # The API server applies schema defaults before CEL; the dump with defaults is that object.
    defaulted = job.model_dump(by_alias=True, exclude_none=True, mode="json")
    result.problems.extend(evaluate(_crd_schema(), defaulted, ""))
    result.problems.extend(run_checks(job.spec))
    return result


def _dedupe(new: Any, existing: list[Problem]) -> list[Problem]:
    seen = {p.path for p in existing}
    return [p for p in new if p.path not in seen]


def load_documents(path: Path) -> list[Any]:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{path}: larger than {MAX_FILE_BYTES} bytes; a FineTuneJob manifest is a few KiB")
    with path.open(encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def validate_file(path: Path) -> list[ValidationResult]:
    try:
        docs = load_documents(path)
    except (OSError, ValueError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return [ValidationResult(str(path), problems=[Problem("(file)", f"cannot be read: {exc}", "fix the YAML")])]
    if not docs:
        return [
            ValidationResult(str(path), problems=[Problem("(file)", "holds no document", f"write a {KIND} manifest")])
        ]
    return [validate_document(doc, str(path)) for doc in docs]
