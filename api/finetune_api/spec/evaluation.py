"""spec.evaluation: measuring the untouched model, then the tuned one, and the publishing gate."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from . import defaults
from .base import CelRule, SpecModel
from .enums import Metric


class GateSpec(SpecModel):
    """Refuse to publish a model that did not beat the baseline by this much."""

    metric: Metric = Field(
        description="The metric compared: accuracy or macro-f1 (classification), eval-loss (both), perplexity (causal-lm)."
    )
    min_improvement: float = Field(
        default=0.0,
        ge=0,
        le=1_000_000,
        description=(
            "Least absolute improvement over the baseline, in the metric's own units and direction "
            "(higher accuracy, lower loss). 0 means 'not worse'."
        ),
    )


class EvaluationSpec(SpecModel):
    """Evaluation runs on the eval set before training (baseline) and after it."""

    baseline: bool = Field(
        default=True, description="Measure the untouched model first, so the tuned one has a number to beat."
    )
    metric: Metric | None = Field(
        default=None,
        description=(
            "The headline metric shown in status and `kubectl get`. Default: the gate's metric when a gate is set, else "
            + ", ".join(f"{m} ({t})" for t, m in defaults.HEADLINE_METRIC.items())
            + "."
        ),
    )
    gate: GateSpec | None = Field(
        default=None, description="Block publishing unless the tuned model beats the baseline."
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="!has(self.gate) || self.baseline",
            message="spec.evaluation.gate compares against the baseline: set spec.evaluation.baseline to true",
            field="gate",
        ),
    )
