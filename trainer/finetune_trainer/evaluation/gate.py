"""The publishing gate: did the tuned model beat the baseline by the required margin?"""

from __future__ import annotations

from dataclasses import dataclass

from finetune_api.spec.evaluation import GateSpec


@dataclass(frozen=True)
class GateResult:
    metric: str
    baseline: float
    tuned: float
    improvement: float
    required: float

    @property
    def passed(self) -> bool:
        return self.improvement >= self.required

    def explain(self) -> str:
        verdict = "met" if self.passed else "not met"
        return (
            f"gate {verdict}: {self.metric} {self.baseline:.4f} -> {self.tuned:.4f} "
            f"(improvement {self.improvement:+.4f}, required {self.required:+.4f})"
        )


def judge(gate: GateSpec, baseline: float, tuned: float) -> GateResult:
    improvement = tuned - baseline if gate.metric.higher_is_better else baseline - tuned
    return GateResult(str(gate.metric), baseline, tuned, improvement, gate.min_improvement)
