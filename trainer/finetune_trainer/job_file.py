"""Reading a FineTuneJob manifest for a run: validated exactly as `finetune validate` does.

Command-line overrides (`finetune run --output/--s3-endpoint`) change the job after it was read, so
the changed job is validated again: an override gets no way around a check the spec must pass.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from finetune_api import API_VERSION, KIND
from finetune_api.v1alpha1.experiment import FineTuneExperiment
from finetune_api.v1alpha1.job import FineTuneJob
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
    result = _flagged(validate_document(doc, "the job with the command-line overrides"), flags)
    return _accepted(result, result.source)


def revalidate_experiment(experiment: FineTuneExperiment, flags: dict[str, str]) -> ValidationResult:
    """`experiment` after overrides to its template, through every check again.

    The template goes first as the FineTuneJob it is the base of, so a bad override is named by its flag
    (`--output (spec.output.uri)`) rather than once per variant; then the whole experiment, variants and all.
    """
    template = experiment.spec.template.model_dump(by_alias=True, exclude_none=True, mode="json")
    as_job = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": experiment.metadata.name}, "spec": template}
    _accepted(_flagged(validate_document(as_job, "the experiment's template with the command-line overrides"), flags))
    doc = experiment.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"status"})
    result = validate_document(doc, "the experiment with the command-line overrides")
    if not result.ok or result.experiment is None:
        raise ConfigError(f"{result.source} is invalid: " + "; ".join(p.render() for p in result.errors))
    return result


def _flagged(result: ValidationResult, flags: dict[str, str]) -> ValidationResult:
    for field, flag in flags.items():
        result.problems = [
            dataclasses.replace(p, path=p.path.replace(field, f"{flag} ({field})", 1))
            if p.path.startswith(field)
            else p
            for p in result.problems
        ]
    return result


def _accepted(result: ValidationResult, source: str | None = None) -> FineTuneJob:
    if not result.ok or result.job is None:
        raise ConfigError(f"{source or result.source} is invalid: " + "; ".join(p.render() for p in result.errors))
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
