"""`finetune run` (and `make demo`, tests/support/demo.py) for a FineTuneExperiment file."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from finetune_api.experiment.expand import Variant
from finetune_api.v1alpha1.experiment import FineTuneExperiment

from ..errors import ConfigError
from ..job_file import load_experiment, revalidate_experiment
from ..overrides import OVERRIDE_FLAGS, spec_with_overrides
from .local import ExperimentOutcome, run_experiment


def with_template_overrides(
    experiment: FineTuneExperiment,
    output: str | None,
    s3_endpoint: str | None,
    max_samples: int | None = None,
    max_eval_samples: int | None = None,
) -> FineTuneExperiment:
    template = spec_with_overrides(experiment.spec.template, output, s3_endpoint, max_samples)
    if max_eval_samples:
        dataset = template.dataset.model_copy(update={"max_eval_samples": max_eval_samples})
        template = template.model_copy(update={"dataset": dataset})
    spec = experiment.spec.model_copy(update={"template": template})
    return experiment.model_copy(update={"spec": spec})


def prepared(
    path: Path, output: str | None, s3_endpoint: str | None, **sizes: int | None
) -> tuple[FineTuneExperiment, list[Variant]]:
    """The experiment file read, the overrides applied, and all of it validated again (ConfigError)."""
    result = load_experiment(path)
    assert result.experiment is not None  # noqa: S101 - load_experiment raises otherwise
    if not (output or s3_endpoint or any(sizes.values())):
        return result.experiment, result.variants
    experiment = with_template_overrides(result.experiment, output, s3_endpoint, **sizes)
    checked = revalidate_experiment(experiment, OVERRIDE_FLAGS)
    assert checked.experiment is not None  # noqa: S101 - revalidate_experiment raises otherwise
    return checked.experiment, checked.variants


def run_prepared(
    experiment: FineTuneExperiment, variants: list[Variant], work: Path | None, progress_bar: bool
) -> ExperimentOutcome:
    root = work or Path(tempfile.gettempdir()) / "finetune" / experiment.metadata.name
    return run_experiment(experiment, variants, root, progress_bar=progress_bar)


def run_experiment_from_cli(args: argparse.Namespace) -> int:
    try:
        experiment, variants = prepared(Path(args.file), args.output, args.s3_endpoint)
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    work = Path(args.work_dir) if args.work_dir else None
    return run_prepared(experiment, variants, work, progress_bar=not args.no_progress).exit_code
