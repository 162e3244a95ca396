"""The in-cluster report step: `python -m finetune_trainer.experiment.step`, started by the operator.

Reads the experiment and the comparison the operator collected (its ConfigMap), publishes the report
beside the variants' outputs and, when spec.promote is set, copies the best variant's output there.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from finetune_api.experiment.compare import best_variant
from finetune_api.experiment.expand import report_uri
from finetune_api.v1alpha1.enums import FailureClass, Metric
from finetune_api.v1alpha1.experiment import FineTuneExperiment
from finetune_api.v1alpha1.experiment_status import VariantStatus

from ..errors import EXIT_CODES, TrainerError, write_termination_message
from ..main import configure_logging
from .report import promote_best, write_report

log = logging.getLogger(__name__)


def run_step(experiment_file: Path, comparison_file: Path) -> str:
    experiment = FineTuneExperiment.model_validate(yaml.safe_load(experiment_file.read_text(encoding="utf-8")))
    comparison = json.loads(comparison_file.read_text(encoding="utf-8"))
    metric = Metric(comparison["metric"])
    rows = [VariantStatus.model_validate(r) for r in comparison["variants"]]
    # Recomputed from the rows rather than trusted from the file: one rule decides, wherever it runs.
    best = best_variant(rows, metric)
    report = write_report(experiment, rows, metric, best, report_uri(experiment))
    log.info("report published: %s", report)
    if best is not None and experiment.spec.promote is not None:
        winner = next(r for r in rows if r.name == best.variant)
        log.info("promoted: %s", promote_best(experiment, winner, experiment.spec.promote.uri))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="finetune_trainer.experiment.step")
    parser.add_argument("--experiment", required=True, type=Path)
    parser.add_argument("--comparison", required=True, type=Path)
    args = parser.parse_args(argv)
    configure_logging()
    try:
        run_step(args.experiment, args.comparison)
    except TrainerError as exc:
        log.error("%s: %s", exc.failure, exc.message)
        write_termination_message(exc.failure, exc.message)
        return exc.exit_code
    except (OSError, ValueError, KeyError) as exc:
        log.error("cannot read the step's input: %s", exc)
        write_termination_message(FailureClass.CONFIG_ERROR, str(exc))
        return EXIT_CODES[FailureClass.CONFIG_ERROR]
    return 0


if __name__ == "__main__":
    sys.exit(main())
