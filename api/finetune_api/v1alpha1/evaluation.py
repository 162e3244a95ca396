"""spec.evaluation: measuring the untouched model, then the tuned one, and the publishing gate."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from . import defaults
from .base import CelRule, SpecModel
from .enums import GateAgainst, Metric


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
    against: GateAgainst = Field(
        default=GateAgainst.BASELINE,
        description=(
            "What the tuned model must beat: baseline (the untouched model, zero-shot) or fewShot (the untouched "
            "model with spec.evaluation.fewShot demonstrations in its prompt, the cheaper alternative to tuning)."
        ),
    )


class FewShotSpec(SpecModel):
    """The untouched model with k training examples in front of each eval prompt: would prompting have done?"""

    shots: int = Field(ge=1, le=64, description="Demonstrations per eval row, drawn (seeded) from the training data.")


class ForgettingSpec(SpecModel):
    """Perplexity on general text before and after training: did the model lose what it knew?"""

    reference: str | None = Field(
        default=None,
        max_length=1024,
        description=(
            "A UTF-8 text file (s3:// URI or path) of general text, never the training data. Unset: the built-in "
            "English Wikipedia excerpt (48 kB of LLaMA-Factory's wiki_demo.txt, shipped in the trainer image)."
        ),
    )
    max_tokens: int = Field(
        default=8192, ge=256, le=1_000_000, description="Tokens of the reference text measured (from its start)."
    )
    max_increase: float | None = Field(
        default=None,
        ge=0,
        le=1000,
        description=(
            "Fail the gate when reference perplexity rose by more than this fraction (0.1 = 10%) after training."
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
    few_shot: FewShotSpec | None = Field(
        default=None,
        description="Also measure the untouched model with demonstrations in its prompt (off by default).",
    )
    forgetting: ForgettingSpec | None = Field(
        default=None,
        description="Measure perplexity on general reference text before and after training (causal-lm; off by default).",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="!has(self.gate) || self.baseline",
            message="spec.evaluation.gate compares against the baseline: set spec.evaluation.baseline to true",
            field="gate",
        ),
        CelRule(
            rule="!has(self.gate) || !has(self.gate.against) || self.gate.against != 'fewShot' || has(self.fewShot)",
            message="spec.evaluation.gate.against fewShot needs the few-shot baseline: set spec.evaluation.fewShot.shots",
            field="gate",
        ),
    )
