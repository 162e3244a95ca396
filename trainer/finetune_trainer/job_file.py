"""Reading a FineTuneJob manifest for a run: validated exactly as `finetune validate` does."""

from __future__ import annotations

from pathlib import Path

from finetune_api.spec.job import FineTuneJob
from finetune_api.validation import validate_file

from .errors import ConfigError


def load_job(path: Path) -> FineTuneJob:
    results = validate_file(path)
    if len(results) != 1:
        raise ConfigError(f"{path}: expected one FineTuneJob, found {len(results)} documents")
    result = results[0]
    if not result.ok or result.job is None:
        raise ConfigError(f"{path} is invalid: " + "; ".join(p.render() for p in result.errors))
    return result.job
