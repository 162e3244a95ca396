"""Data hygiene before any training step: empty rows, duplicates, train/eval leakage, label balance."""

from __future__ import annotations

import random
from collections import Counter

from finetune_api.measurements import DataHygiene

from ..errors import DataError
from .records import Record

EXAMPLES_SHOWN = 5


def drop_empty(records: list[Record], report: DataHygiene, source: str = "") -> list[Record]:
    """Rows with no text at all are dropped by design; the report says how many and where."""
    kept = [r for r in records if not r.is_empty]
    report.empty_dropped += len(records) - len(kept)
    room = EXAMPLES_SHOWN - len(report.empty_rows)
    report.empty_rows += [f"{source} {r.row}".strip() for r in records if r.is_empty][: max(room, 0)]
    return kept


def deduplicate(records: list[Record], report: DataHygiene) -> list[Record]:
    seen: set[tuple[str, str | None]] = set()
    kept = []
    for r in records:
        ident = (r.key, r.label)
        if ident not in seen:
            seen.add(ident)
            kept.append(r)
    report.duplicates_dropped += len(records) - len(kept)
    return kept


def check_overlap(train: list[Record], evaluation: list[Record], allow: bool, report: DataHygiene) -> None:
    train_keys = {r.key for r in train}
    shared = [r for r in evaluation if r.key in train_keys]
    report.overlap = len(shared)
    if shared and not allow:
        examples = "; ".join(repr(next(iter(r.fields.values())))[:120] for r in shared[:2])
        raise DataError(
            f"{len(shared)} evaluation rows also appear in the training data (e.g. {examples}); "
            "leaked rows inflate the evaluation. Remove them, or set spec.dataset.allowOverlap: true"
        )


def split(records: list[Record], fraction: float, seed: int, stratify: bool) -> tuple[list[Record], list[Record]]:
    """A seeded hold-out split, stratified by label when asked (each label keeps its share)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data order, not cryptography
    groups: dict[str | None, list[Record]] = {}
    for r in records:
        groups.setdefault(r.label if stratify else None, []).append(r)
    train, held = [], []
    for key in sorted(groups, key=str):
        group = groups[key][:]
        rng.shuffle(group)
        n = max(1, round(len(group) * fraction)) if len(group) > 1 else 0
        held += group[:n]
        train += group[n:]
    rng.shuffle(train)
    rng.shuffle(held)
    return train, held


def sample(records: list[Record], limit: int | None, seed: int, keep_labels: set[str] | None = None) -> list[Record]:
    """At most `limit` rows, seeded. With `keep_labels` (the labels the evaluation rows hold), every one
    of them that the rows have stays in the sample: a row of the most common label makes room for it."""
    if limit is None or len(records) <= limit:
        return records
    rng = random.Random(seed)  # noqa: S311 - reproducible data order, not cryptography
    picked = rng.sample(records, limit)
    if not keep_labels:
        return picked
    have = Counter(r.label for r in picked)
    available = {r.label for r in records if r.label is not None} & keep_labels
    for wanted in sorted(available - set(have)):
        donor = max((k for k in have if k is not None), key=lambda k: (have[k], str(k)), default=None)
        if donor is None or have[donor] <= 1:
            break
        spot = next(i for i in range(len(picked) - 1, -1, -1) if picked[i].label == donor)
        picked[spot] = rng.choice([r for r in records if r.label == wanted])
        have[donor] -= 1
        have[wanted] += 1
    lost = sorted(label for label in available if not have[label])
    if lost:
        raise DataError(
            f"spec.dataset.maxSamples: {limit} training rows cannot hold every label of the evaluation rows; "
            f"sampling would lose {lost}; raise maxSamples to at least {len(available)}"
        )
    return picked


def count_labels(records: list[Record]) -> dict[str, int]:
    return dict(Counter(r.label for r in records if r.label is not None))
