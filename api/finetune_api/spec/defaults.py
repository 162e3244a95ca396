"""Defaults that depend on other fields: one place, read by the trainer, the validation and experiments."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .enums import Metric, TaskType

if TYPE_CHECKING:
    from .job import FineTuneJobSpec


def headline_metric(spec: FineTuneJobSpec) -> Metric:
    """spec.evaluation.metric, else the gate's metric, else accuracy (classification) or perplexity (causal-lm)."""
    if spec.evaluation.metric:
        return spec.evaluation.metric
    if spec.evaluation.gate:
        return spec.evaluation.gate.metric
    return Metric.ACCURACY if spec.task.type == TaskType.SEQUENCE_CLASSIFICATION else Metric.PERPLEXITY
