"""Pure planning for a FineTuneExperiment: which variants to start next, and the status from what exists.

Inputs are the expanded variants and the experiment's FineTuneJobs as listed from the API server (by
label); nothing here calls the API. Because the FineTuneJobs' names are fixed by the variants and
creation is create-or-get, a restarted operator that plans from the listing neither starts a
variant twice nor forgets one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from finetune_api.experiment.compare import best_variant, variant_row
from finetune_api.experiment.expand import Variant
from finetune_api.v1alpha1.enums import Metric, Phase
from finetune_api.v1alpha1.experiment_status import BestVariant, VariantStatus
from finetune_api.v1alpha1.status import FineTuneJobStatus

from ..resource import Observed

TERMINAL = (Phase.SUCCEEDED, Phase.FAILED)
Jobs = Mapping[str, Mapping[str, Any]]  # FineTuneJob name -> body


def _phase(body: Mapping[str, Any] | None) -> Phase | None:
    if body is None:
        return None
    raw = str((body.get("status") or {}).get("phase") or "")
    # A FineTuneJob the operator has not reconciled yet has no phase: it exists, so it counts as started.
    return Phase(raw) if raw in Phase._value2member_map_ else Phase.PENDING


def active(variants: Sequence[Variant], jobs: Jobs) -> list[Variant]:
    """Variants whose FineTuneJob exists and has not finished: they hold a maxParallel slot."""
    return [v for v in variants if v.job_name in jobs and _phase(jobs[v.job_name]) not in TERMINAL]


def to_start(variants: Sequence[Variant], jobs: Jobs, max_parallel: int) -> list[Variant]:
    """The next variants to create, in the experiment's order, so at most max_parallel run at once."""
    free = max(0, max_parallel - len(active(variants, jobs)))
    return [v for v in variants if v.job_name not in jobs][:free]


def all_finished(variants: Sequence[Variant], jobs: Jobs) -> bool:
    return all(_phase(jobs.get(v.job_name)) in TERMINAL for v in variants)


def row(variant: Variant, body: Mapping[str, Any] | None) -> VariantStatus:
    """One row of the comparison, from the variant's FineTuneJob status (what its trainer reported)."""
    status = Observed.of(body).status if body is not None else FineTuneJobStatus()
    failure = f"{status.failure.reason}: {status.failure.message}" if status.failure else None
    return variant_row(variant, _phase(body), status.metrics, status.output, failure)


@dataclass(frozen=True)
class Counts:
    variant_count: int
    running: int
    succeeded: int
    failed: int


@dataclass(frozen=True)
class Comparison:
    rows: list[VariantStatus]
    best: BestVariant | None  # only once every variant finished: a running one may still win
    finished: bool

    @property
    def counts(self) -> Counts:
        phases = [r.phase for r in self.rows]
        return Counts(
            variant_count=len(self.rows),
            running=sum(1 for p in phases if p is not None and p not in TERMINAL),
            succeeded=phases.count(Phase.SUCCEEDED),
            failed=phases.count(Phase.FAILED),
        )


def compare(variants: Sequence[Variant], jobs: Jobs, metric: Metric) -> Comparison:
    rows = [row(v, jobs.get(v.job_name)) for v in variants]
    finished = all_finished(variants, jobs)
    return Comparison(rows, best_variant(rows, metric) if finished else None, finished)


def experiment_phase(comparison: Comparison, report_phase: Phase | None) -> tuple[Phase, str]:
    """Pending until a variant exists; Running until the report step ends; then Succeeded or Failed."""
    counts = comparison.counts
    if not comparison.finished:
        started = counts.variant_count - sum(1 for r in comparison.rows if r.phase is None)
        if started == 0:
            return Phase.PENDING, "creating the variants' FineTuneJobs"
        done = counts.succeeded + counts.failed
        return Phase.RUNNING, f"{done} of {counts.variant_count} variants finished, {counts.running} running"
    if report_phase == Phase.FAILED:
        return Phase.FAILED, "the report step failed; see status.report"
    if report_phase != Phase.SUCCEEDED:
        return Phase.RUNNING, "every variant finished; writing the comparison report"
    if comparison.best is None:
        return Phase.FAILED, "no variant succeeded with a metric; the report lists why each failed"
    return Phase.SUCCEEDED, f"best: {comparison.best.variant} ({comparison.best.reason})"
