"""Interleaved repeats (a b c a b c ...) and what they summarise to: medians and the spread around them.

On a shared machine the load drifts over minutes; running the variants in turn, round after round,
exposes each to the same drift, and a ratio taken within one round compares runs seconds apart.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .harness import Stats


@dataclass
class Repeats:
    """Every round's Stats per variant, in the order they ran."""

    runs: dict[str, list[Stats]]

    def median(self, variant: str, value: Callable[[Stats], float]) -> float:
        return statistics.median(value(s) for s in self.runs[variant])

    def spread(self, variant: str, value: Callable[[Stats], float]) -> list[float]:
        values = [value(s) for s in self.runs[variant]]
        return [min(values), max(values)]

    def ratios(self, top: str, bottom: str) -> list[float]:
        """top/bottom samples/s within each round (runs of one round are minutes apart at most)."""
        pairs = zip(self.runs[top], self.runs[bottom], strict=True)
        return [t.samples_per_s / b.samples_per_s for t, b in pairs]

    def padding(self, variant: str) -> float | None:
        found = [s.padding for s in self.runs[variant] if s.padding is not None]
        return statistics.median(found) if found else None


def interleave(variants: Sequence[str], rounds: int, run: Callable[[str, int], Stats]) -> Repeats:
    """run(variant, round) for every variant in turn, `rounds` times over."""
    runs: dict[str, list[Stats]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants:
            runs[v].append(run(v, r))
    return Repeats(runs)


def ratio_summary(values: list[float]) -> tuple[float, list[float]]:
    """Median and [min, max], to two decimals."""
    return round(statistics.median(values), 2), [round(min(values), 2), round(max(values), 2)]


# A speed-up counts only with its quality beside it: how much worse a variant may score than the
# baseline before it is reported as a regression. Accuracy: 1 point, absolute. Eval loss: 1%, relative.
TOLERANCE = {"accuracy": 0.01, "eval_loss": 0.01}
HIGHER_IS_BETTER = {"accuracy": True, "eval_loss": False}


@dataclass(frozen=True)
class QualityVerdict:
    metric: str
    baseline: float  # medians over the seeds
    variant: float
    worse_by: float  # in the tolerance's units (points of accuracy, fraction of the loss); < 0 is better
    allowed: float  # tolerance plus half the baseline's seed range
    regression: bool
    worst_worse_by: float = 0.0  # the variant's worst seed against the baseline's worst seed, same units

    def text(self, baseline: str, variant: str) -> str:
        unit = "points" if self.metric == "accuracy" else "% of the loss"
        unstable = self.worst_worse_by > self.allowed
        return (
            f"{self.metric} ({variant}) {self.variant:.4f} against ({baseline}) {self.baseline:.4f}: "
            f"worse by {self.worse_by * 100:+.1f} {unit}, allowed {self.allowed * 100:.1f}"
            + (f", worst seed worse by {self.worst_worse_by * 100:+.1f}" if unstable else "")
            + ": "
            + ("REGRESSION" if self.regression else "ok")
        )


def quality_verdict(metric: str, baseline: Sequence[float], variant: Sequence[float]) -> QualityVerdict:
    """Is the variant worse than the baseline by more than the tolerance, beyond the baseline's seed spread,
    at its median or at its worst seed?

    The allowance comes from the baseline's spread only: a variant must not excuse itself by being
    unstable. A seed that collapses (one small-groups run fell to the majority class, 0.593 against
    0.93) widens the variant's range, and that is a finding, not noise."""
    base, var = statistics.median(baseline), statistics.median(variant)
    higher = HIGHER_IS_BETTER[metric]
    sign = 1 if higher else -1
    scale = 1.0 if metric == "accuracy" else abs(base) or 1.0
    worse_by = sign * (base - var) / scale
    worst = min if higher else max
    worst_worse_by = sign * (worst(baseline) - worst(variant)) / scale
    allowed = TOLERANCE[metric] + (max(baseline) - min(baseline)) / 2 / scale
    regression = worse_by > allowed or worst_worse_by > allowed
    return QualityVerdict(
        metric, base, var, round(worse_by, 4), round(allowed, 4), regression, round(worst_worse_by, 4)
    )
