"""The publishing gate: did the tuned model beat its reference by the required margin, without forgetting too much?"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from finetune_api.measurements import GateCheck, GateRecord
from finetune_api.v1alpha1.evaluation import GateSpec

REFERENCE_NAMES = {"baseline": "untouched model", "fewShot": "few-shot prompting"}


@dataclass(frozen=True)
class GateResult:
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
        versus = REFERENCE_NAMES.get(self.against, self.against)
        return (
            f"gate {verdict}: {self.metric} {self.baseline:.4f} ({versus}) -> {self.tuned:.4f} "
            f"(improvement {self.improvement:+.4f}, required {self.required:+.4f})"
        )


@dataclass(frozen=True)
class Verdict:
    """Every check the job asked for; publishing needs all of them passed."""

    checks: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def explain(self) -> str:
        return "; ".join(c.explain() for c in self.checks)

    def record(self) -> GateRecord:
        checks = [GateCheck(**asdict(c)) for c in self.checks]
        return GateRecord(passed=self.passed, explanation=self.explain(), checks=checks)


def judge(gate: GateSpec, baseline: float, tuned: float) -> GateResult:
    improvement = tuned - baseline if gate.metric.higher_is_better else baseline - tuned
    return GateResult(str(gate.metric), baseline, tuned, improvement, gate.min_improvement, str(gate.against))


def judge_forgetting(before: float, after: float, max_increase: float) -> GateResult:
    """Reference perplexity may rise by at most `max_increase` (a fraction of its value before training)."""
    change = after / before - 1.0
    return GateResult("reference-perplexity-increase", before, after, -change, -max_increase, "before training")
