"""Validate manifest files: YAML -> each document as a FineTuneJob or a FineTuneExperiment, all problems at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .. import EXPERIMENT_KIND, KIND
from ..v1alpha1.job import FineTuneJob
from .experiment import check_experiment
from .job import check_job
from .manifest_yaml import MAX_FILE_BYTES, ManifestError, load_manifest_documents
from .problems import Problem, Severity, shown

if TYPE_CHECKING:
    from ..experiment.expand import Variant
    from ..v1alpha1.experiment import FineTuneExperiment

LIST_KIND = "List"  # what `kubectl get -o yaml` writes: {apiVersion: v1, kind: List, items: [...]}


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


def validate_document(doc: Any, source: str = "<document>") -> ValidationResult:
    result = ValidationResult(source=source)
    if not isinstance(doc, dict):
        result.problems.append(Problem("(document)", "is not a mapping", f"write a {KIND} manifest"))
        return result
    meta = doc.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        result.problems.append(
            Problem("metadata", f"is {type(meta).__name__} {shown(meta)}, not a mapping", "write metadata: {name: ...}")
        )
        return result
    result.name = str((meta or {}).get("name", "")) or None
    if doc.get("kind") == EXPERIMENT_KIND:
        checked = check_experiment(doc)
        result.problems, result.experiment, result.variants = checked.problems, checked.experiment, checked.variants
        if not result.ok:
            result.experiment, result.variants = None, []
        return result
    job_check = check_job(doc)
    result.job, result.problems = job_check.job, job_check.problems
    return result


def load_documents(path: Path) -> list[Any]:
    """The file's documents, read with limits (manifest_yaml); raises ManifestError, OSError or YAMLError."""
    if path.is_dir():
        raise ManifestError("is a folder", f"name a {KIND} manifest file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ManifestError(f"larger than {MAX_FILE_BYTES} bytes", "a FineTuneJob manifest is a few KiB")
    return load_manifest_documents(path.read_text(encoding="utf-8"))


def _file_problem(path: Path, problem: Problem) -> list[ValidationResult]:
    return [ValidationResult(str(path), problems=[problem])]


def validate_file(path: Path) -> list[ValidationResult]:
    try:
        docs = load_documents(path)
    except ManifestError as exc:
        return _file_problem(path, Problem("(file)", exc.message, exc.fix))
    except UnicodeDecodeError as exc:
        return _file_problem(path, Problem("(file)", f"is not UTF-8 text (byte {exc.start})", "save it as UTF-8"))
    except OSError as exc:
        return _file_problem(path, Problem("(file)", f"cannot be read: {exc.strerror or exc}", "check the path"))
    except yaml.YAMLError as exc:
        return _file_problem(path, Problem("(file)", f"is not valid YAML: {_one_line(exc)}", "fix the YAML"))
    if not docs:
        return _file_problem(path, Problem("(file)", "holds no document", f"write a {KIND} manifest"))
    results: list[ValidationResult] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == LIST_KIND:
            results.extend(_validate_list(doc, str(path)))
        else:
            results.append(validate_document(doc, str(path)))
    return results


def _validate_list(doc: dict[str, Any], source: str) -> list[ValidationResult]:
    """A Kubernetes List: each item is checked as a document of its own."""
    items = doc.get("items")
    if not isinstance(items, list) or not items:
        problem = Problem("items", "a List must hold a non-empty list of items", f"list {KIND} objects under items")
        return [ValidationResult(source, problems=[problem])]
    return [validate_document(item, f"{source} items[{i}]") for i, item in enumerate(items)]


def _one_line(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"
