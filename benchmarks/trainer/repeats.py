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
