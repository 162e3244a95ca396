"""What one run measured, typed: the record every view of a run is projected from.

The runner's stages fill one RunMeasurements (baseline, few-shot, tuned, forgetting, cost, data
hygiene, gate); status.metrics, the trainer's Prometheus gauges, metrics.json, the manifest, the model
card, the command line's summary and an experiment's comparison rows are each a function of it. A new
measurement is a field here and a line in the projections that show it.

On the wire (metrics.json, the manifest) the names are snake_case, as the evaluation keys are.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from .v1alpha1.enums import Metric
from .v1alpha1.status import Metrics

Scores = dict[str, float]  # one evaluation pass, keyed as transformers reports it: eval_loss, eval_accuracy, ...

EVAL_KEYS = ("eval_accuracy", "eval_macro_f1", "eval_loss", "eval_perplexity")  # the ones tables show, in order


def metric_key(metric: Metric) -> str:
    """The key a metric has in an evaluation's scores."""
    return {
        Metric.ACCURACY: "eval_accuracy",
        Metric.MACRO_F1: "eval_macro_f1",
        Metric.EVAL_LOSS: "eval_loss",
        Metric.PERPLEXITY: "eval_perplexity",
    }[metric]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FewShot(Record):
    """The untouched model prompted with `shots` training examples before each eval row."""

    shots: int = Field(ge=0)
    scores: Scores = Field(default_factory=dict)
    demonstrations: float | None = None  # mean demonstrations that fitted within maxLength (causal-lm)
    not_applicable: str | None = None  # why it could not be measured (an encoder classifier, ...)


class Forgetting(Record):
    """Perplexity on general reference text before and after training."""

    reference: str
    tokens: int = Field(ge=0)
    before: float
    after: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _derived_is_not_input(cls, data: Any) -> Any:
        # relative_change is written for readers of metrics.json; reading the record back derives it again.
        return {k: v for k, v in data.items() if k != "relative_change"} if isinstance(data, dict) else data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def relative_change(self) -> float | None:
        return None if self.after is None else self.after / self.before - 1.0


class Cost(Record):
    """What the tuned model cost: what the method trained, how long, how fast, in how much memory, and what
    sharing the cluster cost it (time queued, preemptions)."""

    trainable_parameters: int | None = None
    total_parameters: int | None = None
    train_seconds: float | None = None
    tokens_per_second: float | None = None
    peak_memory_bytes: int | None = None
    padding_fraction: float | None = None  # of the training batches' tokens
    precision: str | None = None
    packed: bool | None = None
    queued_seconds: float | None = None  # waiting for Kueue's admission (status.queue), on a shared cluster
    preemptions: int | None = None  # by Kueue, each resumed from a checkpoint


class DataHygiene(Record):
    """What the data checks found before any step: rows read and dropped, leakage, truncation, label balance."""

    train_rows_read: int = 0
    eval_rows_read: int = 0
    empty_dropped: int = 0
    empty_rows: list[str] = Field(default_factory=list)  # the first few, as "<file> line 7"
    duplicates_dropped: int = 0
    overlap: int = 0
    truncated_rows: int = 0
    label_counts: dict[str, int] = Field(default_factory=dict)
    eval_label_counts: dict[str, int] = Field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [
            f"train rows read: {self.train_rows_read}, eval rows read: {self.eval_rows_read}",
            f"empty rows dropped: {self.empty_dropped}{self._where_empty()}, "
            f"duplicate training rows dropped: {self.duplicates_dropped}",
            f"train/eval overlap: {self.overlap}, rows truncated to maxLength: {self.truncated_rows}",
        ]
        if self.label_counts:
            total = sum(self.label_counts.values())
            out.append(
                "label balance: "
                + ", ".join(f"{k} {v} ({v / total:.0%})" for k, v in sorted(self.label_counts.items()))
            )
        return out

    def _where_empty(self) -> str:
        if not self.empty_rows:
            return ""
        more = ", ..." if self.empty_dropped > len(self.empty_rows) else ""
        return f" ({', '.join(self.empty_rows)}{more})"


GATE_REFERENCES = {"baseline": "untouched model", "fewShot": "few-shot prompting"}


class GateCheck(Record):
    """One check of the publishing gate: did `tuned` beat `baseline` by `required`?"""

    metric: str
    baseline: float  # the number to beat: the untouched model, zero- or few-shot, or perplexity before training
    tuned: float
    improvement: float
    required: float
    against: str = "baseline"

    @property
    def passed(self) -> bool:
        return self.improvement >= self.required

    def explain(self) -> str:
        verdict = "met" if self.passed else "not met"
        versus = GATE_REFERENCES.get(self.against, self.against)
        return (
            f"gate {verdict}: {self.metric} {self.baseline:.4f} ({versus}) -> {self.tuned:.4f} "
            f"(improvement {self.improvement:+.4f}, required {self.required:+.4f})"
        )


class GateRecord(Record):
    passed: bool
    explanation: str
    checks: list[GateCheck]


class RunMeasurements(Record):
    metric: Metric  # the headline metric (spec.evaluation.metric, resolved)
    baseline: Scores = Field(default_factory=dict)  # the untouched model, zero-shot; empty when not measured
    few_shot: FewShot | None = None
    tuned: Scores = Field(default_factory=dict)
    forgetting: Forgetting | None = None
    steps: int = 0  # optimizer steps of the tuned model
    cost: Cost = Field(default_factory=Cost)
    hygiene: DataHygiene = Field(default_factory=DataHygiene)
    gate: GateRecord | None = None
    loss_history: list[dict[str, float]] = Field(default_factory=list)  # {step, train_loss} and {step, eval_loss}

    def headline(self, scores: Scores | None) -> float | None:
        return (scores or {}).get(metric_key(self.metric))


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def status_metrics(
    m: RunMeasurements,
    *,
    train_loss: float | None = None,
    eval_loss: float | None = None,
    eval_metric: float | None = None,
) -> Metrics:
    """status.metrics: the measurements, with the loop's latest losses while it runs (else the tuned model's)."""
    few = m.few_shot.scores if m.few_shot else None
    return Metrics(
        train_loss=train_loss,
        eval_loss=eval_loss if eval_loss is not None else m.tuned.get("eval_loss"),
        metric_name=str(m.metric),
        eval_metric=eval_metric if eval_metric is not None else m.headline(m.tuned),
        baseline_metric=m.headline(m.baseline),
        few_shot_metric=m.headline(few),
        reference_perplexity_before=m.forgetting.before if m.forgetting else None,
        reference_perplexity_after=m.forgetting.after if m.forgetting else None,
        trainable_parameters=m.cost.trainable_parameters,
        train_seconds=_rounded(m.cost.train_seconds),
        tokens_per_second=_rounded(m.cost.tokens_per_second),
        peak_memory_bytes=m.cost.peak_memory_bytes,
    )


def manifest_metrics(m: RunMeasurements) -> dict[str, object]:
    """What the manifest records of the run's numbers: the evaluations and the gate (metrics.json has all)."""
    return m.model_dump(mode="json", include={"metric", "baseline", "few_shot", "tuned", "forgetting", "gate"})
