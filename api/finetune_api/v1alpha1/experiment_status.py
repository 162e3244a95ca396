"""status of a FineTuneExperiment: one row per variant (what its FineTuneJob reported), the best, the report."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from .base import URI_MAX, SpecModel
from .enums import Phase
from .status import Condition, OutputStatus


class VariantStatus(SpecModel):
    """One variant's row of the comparison, copied from its FineTuneJob's status."""

    name: str = Field(max_length=64, description="The variant's name.")
    job: str = Field(max_length=63, description="Its FineTuneJob, <experiment>-<variant>.")
    phase: Phase | None = Field(default=None, description="The FineTuneJob's phase; unset while not yet created.")
    method: str | None = Field(default=None, max_length=32, description="The variant's method type.")
    changes: str | None = Field(
        default=None,
        max_length=512,
        description="What the variant changes in the template, e.g. 'training.learningRate=3e-4'.",
    )
    metric: float | None = Field(default=None, description="The compared metric of the tuned model.")
    baseline: float | None = Field(default=None, description="The same metric of the untouched model.")
    trainable_parameters: int | None = Field(default=None, ge=0, description="Parameters the method trained.")
    train_seconds: float | None = Field(default=None, ge=0, description="Wall-clock time of the training loop.")
    tokens_per_second: float | None = Field(default=None, ge=0, description="Training throughput.")
    peak_memory_bytes: int | None = Field(
        default=None, ge=0, description="Peak accelerator (or host) memory during training."
    )
    output: OutputStatus | None = Field(default=None, description="The published output, once its manifest exists.")
    failure: str | None = Field(default=None, max_length=1024, description="Why the variant failed, when it did.")


class BestVariant(SpecModel):
    """The winner and why."""

    variant: str = Field(max_length=64, description="Name of the best variant.")
    metric_name: str = Field(max_length=32, description="The metric compared.")
    metric: float = Field(description="Its value for the best variant.")
    reason: str = Field(max_length=1024, description="Why it won, e.g. against the runner-up and the baseline.")


class ReportStatus(SpecModel):
    """The comparison report (comparison.md, comparison.png) and the promoted output."""

    phase: Phase | None = Field(default=None, description="Phase of the report step.")
    job_name: str | None = Field(default=None, max_length=63, description="The batch/v1 Job that writes the report.")
    uri: str | None = Field(default=None, max_length=URI_MAX, description="Where the report is published.")
    promoted: str | None = Field(
        default=None, max_length=URI_MAX, description="Where the best output was copied (spec.promote.uri)."
    )
    message: str | None = Field(default=None, max_length=1024, description="What went wrong, when it did.")


class FineTuneExperimentStatus(SpecModel):
    """Observed state of a FineTuneExperiment."""

    phase: Phase | None = Field(default=None, description="Pending, Running, Succeeded (report written) or Failed.")
    message: str | None = Field(
        default=None, max_length=4096, description="A human-readable summary or the reason it failed."
    )
    conditions: list[Condition] | None = Field(default=None, max_length=16, description="Conditions, one per type.")
    observed_generation: int | None = Field(default=None, ge=0, description="The .metadata.generation last acted on.")
    start_time: datetime | None = Field(default=None, description="When the first variant's FineTuneJob was created.")
    completion_time: datetime | None = Field(default=None, description="When the experiment finished.")
    variant_count: int | None = Field(default=None, ge=0, description="Number of variants.")
    running: int | None = Field(default=None, ge=0, description="Variants created and not finished.")
    succeeded: int | None = Field(default=None, ge=0, description="Variants that succeeded.")
    failed: int | None = Field(default=None, ge=0, description="Variants that failed.")
    variants: list[VariantStatus] | None = Field(
        default=None, max_length=32, description="The comparison, one row per variant."
    )
    best: BestVariant | None = Field(default=None, description="The best variant, once every variant finished.")
    report: ReportStatus | None = Field(default=None, description="The comparison report and the promoted output.")
