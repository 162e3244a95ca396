"""Reading a FineTuneJob manifest for a run: validated exactly as `finetune validate` does."""

from __future__ import annotations

from pathlib import Path

from finetune_api.spec.experiment import FineTuneExperiment
from finetune_api.spec.job import FineTuneJob
from finetune_api.validation import ValidationResult, validate_file
from finetune_api.validation.validate import load_documents

from .errors import ConfigError


def load_job(path: Path) -> FineTuneJob:
    results = validate_file(path)
    if len(results) != 1:
        raise ConfigError(f"{path}: expected one FineTuneJob, found {len(results)} documents")
    result = results[0]
    if not result.ok or result.job is None:
        raise ConfigError(f"{path} is invalid: " + "; ".join(p.render() for p in result.errors))
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
