"""The publishing gate: did the tuned model beat its reference by the required margin, without forgetting too much?"""

from __future__ import annotations

from dataclasses import dataclass

from finetune_api.measurements import GateCheck, GateRecord
from finetune_api.v1alpha1.evaluation import GateSpec


@dataclass(frozen=True)
class Verdict:
    """Every check the job asked for; publishing needs all of them passed."""

    checks: tuple[GateCheck, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def explain(self) -> str:
        return "; ".join(c.explain() for c in self.checks)

    def record(self) -> GateRecord:
        return GateRecord(passed=self.passed, explanation=self.explain(), checks=list(self.checks))


def judge(gate: GateSpec, baseline: float, tuned: float) -> GateCheck:
    improvement = tuned - baseline if gate.metric.higher_is_better else baseline - tuned
    return GateCheck(
        metric=str(gate.metric),
        baseline=baseline,
        tuned=tuned,
        improvement=improvement,
        required=gate.min_improvement,
        against=str(gate.against),
    )


def judge_forgetting(before: float, after: float, max_increase: float) -> GateCheck:
    """Reference perplexity may rise by at most `max_increase` (a fraction of its value before training)."""
    change = after / before - 1.0
    return GateCheck(
        metric="reference-perplexity-increase",
        baseline=before,
        tuned=after,
        improvement=-change,
        required=-max_increase,
        against="before training",
    )
