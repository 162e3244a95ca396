"""`finetune run experiment.yaml`: the variants one after another on this machine, then the comparison.

Every variant runs exactly as its FineTuneJob would in a pod (same validation, same publishing); they
share one download folder, so the data and the base model are fetched once for all of them.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from finetune_api.exit_codes import CLASS_OF_EXIT
from finetune_api.experiment.compare import best_variant, text_table, variant_row
from finetune_api.experiment.expand import Variant, compared_metric, report_uri
from finetune_api.measurements import status_metrics
from finetune_api.pod_contract import published_output
from finetune_api.v1alpha1.enums import Metric, Phase
from finetune_api.v1alpha1.experiment import FineTuneExperiment
from finetune_api.v1alpha1.experiment_status import BestVariant, VariantStatus
from finetune_api.v1alpha1.job import FineTuneJob

from ..errors import TrainerError
from ..main import RunOptions, execute
from ..training.results import RunResult
from .report import promote_best, write_report

log = logging.getLogger(__name__)


@dataclass
class ExperimentOutcome:
    rows: list[VariantStatus]
    metric: Metric
    best: BestVariant | None
    report: str | None
    promoted: str | None

    @property
    def exit_code(self) -> int:
        # The experiment did its job when it found a winner and published the report; failed variants
        # are part of its answer.
        return 0 if self.best is not None and self.report is not None else 1


def row_from_result(variant: Variant, code: int, result: RunResult | None) -> VariantStatus:
    """The row the operator would build from the variant's status: the same projection, the same builder."""
    if result is None:
        failure = CLASS_OF_EXIT.get(code)
        return variant_row(variant, Phase.FAILED, failure=f"{failure or 'exit code'} ({code})")
    output = published_output(result.output_uri) if result.manifest_uri else None
    return variant_row(variant, Phase.SUCCEEDED, status_metrics(result.measured), output)


def run_experiment(
    experiment: FineTuneExperiment,
    variants: list[Variant],
    work: Path,
    progress_bar: bool = True,
    out: TextIO = sys.stdout,
) -> ExperimentOutcome:
    downloads = work / "downloads"
    rows = []
    for i, variant in enumerate(variants, 1):
        print(f"==> variant {i}/{len(variants)}: {variant.name} ({variant.summary or 'the template'})", file=out)
        job = FineTuneJob.model_validate(variant.document)
        code, result = execute(
            job,
            RunOptions(
                work_dir=work / variant.name, progress_bar=progress_bar, termination_log=os.devnull, downloads=downloads
            ),
        )
        rows.append(row_from_result(variant, code, result))
    metric = Metric(compared_metric(experiment))
    best = best_variant(rows, metric)
    report = promoted = None
    try:
        report = write_report(experiment, rows, metric, best, report_uri(experiment))
    except TrainerError as exc:
        log.error("the comparison report could not be published: %s", exc.message)
    if best is not None and experiment.spec.promote is not None:
        try:
            promoted = promote_best(
                experiment, next(r for r in rows if r.name == best.variant), experiment.spec.promote.uri
            )
        except TrainerError as exc:
            log.error("promotion failed: %s", exc.message)
    print("\n" + text_table(rows, metric, best), file=out)
    print(f"report: {report or 'not published'}" + (f"\npromoted: {promoted}" if promoted else ""), file=out)
    return ExperimentOutcome(rows, metric, best, report, promoted)
