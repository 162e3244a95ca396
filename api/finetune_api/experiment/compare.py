"""The comparison of an experiment's variants: which one is best, and why, and the table of all of them.

Pure functions of the rows (status.variants), shared by the operator (status), the local runner and the
report step (comparison.md), so all three always agree on the winner.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..v1alpha1.enums import Metric, Phase
from ..v1alpha1.experiment_status import BestVariant, VariantStatus
from ..v1alpha1.status import Metrics, OutputStatus
from .expand import Variant


def variant_row(
    variant: Variant,
    phase: Phase | None,
    metrics: Metrics | None = None,
    output: OutputStatus | None = None,
    failure: str | None = None,
) -> VariantStatus:
    """One row of the comparison from what its run reported as status.metrics: the operator's (from the
    variant's FineTuneJob) and the local runner's (from the run's measurements) are the same function."""
    m = metrics or Metrics()
    return VariantStatus(
        name=variant.name,
        job=variant.job_name,
        phase=phase,
        method=variant.method,
        changes=variant.summary or None,
        metric=m.eval_metric,
        baseline=m.baseline_metric,
        trainable_parameters=m.trainable_parameters,
        train_seconds=m.train_seconds,
        tokens_per_second=m.tokens_per_second,
        peak_memory_bytes=m.peak_memory_bytes,
        output=output,
        failure=failure[:1024] if failure else None,
    )


def _competes(row: VariantStatus) -> bool:
    # Only published variants can be promoted; a failed one (gate not met, out of memory) never wins.
    return row.phase == Phase.SUCCEEDED and row.metric is not None


def rank(rows: Sequence[VariantStatus], metric: Metric) -> list[VariantStatus]:
    """Competing variants, best first; ties go to fewer trainable parameters, then to the earlier variant."""
    sign = -1.0 if metric.higher_is_better else 1.0
    order = {row.name: i for i, row in enumerate(rows)}
    competing = [r for r in rows if _competes(r)]
    return sorted(
        competing,
        key=lambda r: (sign * (r.metric or 0.0), r.trainable_parameters or 0, order[r.name]),
    )


def best_variant(rows: Sequence[VariantStatus], metric: Metric) -> BestVariant | None:
    ranked = rank(rows, metric)
    if not ranked:
        return None
    top = ranked[0]
    assert top.metric is not None  # noqa: S101 - rank() keeps only rows with a metric
    parts = [f"highest {metric}" if metric.higher_is_better else f"lowest {metric}"]
    parts[0] += f" of {len(ranked)} succeeded variant{'s' if len(ranked) != 1 else ''}: {top.metric:.4f}"
    if len(ranked) > 1:
        second = ranked[1]
        parts.append(f"runner-up {second.name} {second.metric:.4f}")
    if top.baseline is not None:
        parts.append(f"untouched model {top.baseline:.4f}")
    if top.trainable_parameters is not None:
        parts.append(f"{human_count(top.trainable_parameters)} trainable parameters")
    return BestVariant(variant=top.name, metric_name=str(metric), metric=top.metric, reason="; ".join(parts)[:1024])


def human_count(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


HEADER = ("variant", "method", "phase", "{metric}", "baseline", "trainable", "train s", "tokens/s", "peak memory")


def table_rows(rows: Sequence[VariantStatus], best: BestVariant | None) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for r in rows:
        name = f"{r.name} *" if best is not None and r.name == best.variant else r.name
        out.append(
            (
                name,
                r.method or "-",
                str(r.phase or "NotStarted"),
                _num(r.metric),
                _num(r.baseline),
                human_count(r.trainable_parameters),
                _num(r.train_seconds, 1),
                _num(r.tokens_per_second, 0),
                human_bytes(r.peak_memory_bytes),
            )
        )
    return out


def header(metric: Metric) -> tuple[str, ...]:
    return tuple(h.format(metric=metric) for h in HEADER)


def markdown_table(rows: Sequence[VariantStatus], metric: Metric, best: BestVariant | None) -> str:
    lines = ["| " + " | ".join(header(metric)) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(rows, best)]
    return "\n".join(lines)


def text_table(rows: Sequence[VariantStatus], metric: Metric, best: BestVariant | None) -> str:
    """The same table for a terminal: aligned columns, the best marked with *."""
    cells = [header(metric), *table_rows(rows, best)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    lines = [
        "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if best is not None:
        lines.append(f"best: {best.variant} ({best.reason})")
    else:
        lines.append("best: none (no variant succeeded with a metric)")
    return "\n".join(lines)
