"""Reading a FineTuneJob manifest for a run: validated exactly as `finetune validate` does.

Command-line overrides (`finetune run --output/--s3-endpoint`) change the job after it was read, so
the changed job is validated again: an override gets no way around a check the spec must pass.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from finetune_api.spec.experiment import FineTuneExperiment
from finetune_api.spec.job import FineTuneJob
from finetune_api.validation import ValidationResult, validate_document, validate_file
from finetune_api.validation.validate import load_documents

from .errors import ConfigError


def load_job(path: Path) -> FineTuneJob:
    results = validate_file(path)
    if len(results) != 1:
        raise ConfigError(f"{path}: expected one FineTuneJob, found {len(results)} documents")
    return _accepted(results[0], str(path))


def revalidate(job: FineTuneJob, flags: dict[str, str]) -> FineTuneJob:
    """`job` after overrides, through every check again; `flags` names the option behind each spec field."""
    doc = job.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"status"})
    result = validate_document(doc, "the job with the command-line overrides")
    for field, flag in flags.items():
        result.problems = [
            dataclasses.replace(p, path=p.path.replace(field, f"{flag} ({field})", 1))
            if p.path.startswith(field)
            else p
            for p in result.problems
        ]
    return _accepted(result, result.source)


def _accepted(result: ValidationResult, source: str) -> FineTuneJob:
    if not result.ok or result.job is None:
        raise ConfigError(f"{source} is invalid: " + "; ".join(p.render() for p in result.errors))
    return result.job


def is_experiment_file(path: Path) -> bool:
    try:
        docs = load_documents(path)
    except Exception:  # noqa: BLE001 - unreadable or malformed: load_job reports why
        return False
    return len(docs) == 1 and isinstance(docs[0], dict) and docs[0].get("kind") == "FineTuneExperiment"


def load_experiment(path: Path) -> ValidationResult:
    """The experiment and its variants, validated as `finetune validate` does (every variant as its FineTuneJob)."""
    results = validate_file(path)
    if len(results) != 1:
        raise ConfigError(f"{path}: expected one FineTuneExperiment, found {len(results)} documents")
    result = results[0]
    if not result.ok or not isinstance(result.experiment, FineTuneExperiment):
        raise ConfigError(f"{path} is invalid: " + "; ".join(p.render() for p in result.errors))
    return result
