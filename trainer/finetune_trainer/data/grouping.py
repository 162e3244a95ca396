"""Length-grouped training order: batches of similar lengths, so padding each to its longest row is cheap.

transformers' own LengthGroupedSampler sorts within mega-batches of min(50, n / (4 x batch)) batches:
on a few hundred rows that is two batches per sort, which leaves most of the padding in place (on 320
tweets in batches of 32 it computed 33% pad tokens against 44% for random batches; a full sort
computes 11%). This order sorts within mega-batches of MEGABATCH_BATCHES batches whatever the dataset
size, shuffles whole steps (not rows) so the training order stays random, and draws from its own
seeded generator, so every rank of a distributed run derives the very same order without sharing
random state, and a resumed run skips exactly the batches it already trained on.

For classification the sort runs within each label (issue 19): where length tells the labels apart,
as in reviews whose complaints run long, a plain sort also sorts by label and hands the model batches
of nearly one label. Here every batch holds the labels in the proportions of its sorting group, at
the cost of some padding on exactly those datasets (benchmarks/trainer/orders.py measures both).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# Rows sorted together, in batches: large enough that neighbours in the sort have nearly equal
# lengths, small enough that an epoch still mixes long and short examples across its steps.
MEGABATCH_BATCHES = 50


@dataclass(frozen=True)
class GroupingPlan:
    """How rows are sorted into batches (the study in benchmarks/trainer/orders.py compares these)."""

    max_megabatch: int = MEGABATCH_BATCHES  # steps sorted together at most
    min_megabatches: int = 1  # an epoch is cut into at least this many sorted groups
    stratify: bool = True  # classification: sort within each label, batches keep the label mix
    noise: float = 0.0  # lengths scaled by a random factor in [1 - noise, 1 + noise] before sorting

    def megabatch_steps(self, rows: int, step_rows: int) -> int:
        epoch_steps = max(1, rows // step_rows)
        return max(1, min(self.max_megabatch, epoch_steps // self.min_megabatches))


DEFAULT_PLAN = GroupingPlan()


def _sorted_rows(
    rows: list[int], lengths: Sequence[int], labels: Sequence[int] | None, plan: GroupingPlan, rng: random.Random
) -> list[int]:
    def key(i: int) -> float:
        return lengths[i] * (1 + rng.uniform(-plan.noise, plan.noise)) if plan.noise else float(lengths[i])

    keys = {i: key(i) for i in rows}
    if labels is None:
        return sorted(rows, key=keys.__getitem__, reverse=True)
    by_label: dict[int, list[int]] = {}
    for i in rows:
        by_label.setdefault(labels[i], []).append(i)
    # A row's place is its length quantile within its own label: rows of every label at the same
    # quantile sit side by side, so each batch holds the labels in the proportions of the whole group.
    place: dict[int, float] = {}
    for members in by_label.values():
        members.sort(key=keys.__getitem__, reverse=True)
        for rank, i in enumerate(members):
            place[i] = (rank + 0.5) / len(members)
    return sorted(rows, key=place.__getitem__)


def grouped_batches(  # noqa: PLR0913 - the sampler's configuration, as LengthGroupedOrder takes it
    lengths: Sequence[int],
    batch_size: int,
    seed: int,
    epoch: int = 0,
    together: int = 1,
    labels: Sequence[int] | None = None,
    plan: GroupingPlan | None = None,
) -> list[list[int]]:
    """One epoch's micro-batches of row indices, each holding rows of similar length.

    `together` micro-batches form one optimizer step (gradient accumulation x data-parallel ranks);
    they are kept adjacent so the ranks of a step get similar lengths and none waits on a long batch.
    Every batch is full except the last few of the epoch, so re-chunking the flattened order by
    `batch_size` (what a DataLoader does) yields exactly these batches.
    """
    if batch_size < 1 or together < 1:
        raise ValueError(f"batch_size and together must be positive, got {batch_size} and {together}")
    rng = random.Random(seed * 1_000_003 + epoch)  # noqa: S311 - data order, not security
    order = list(range(len(lengths)))
    rng.shuffle(order)
    plan = plan or DEFAULT_PLAN
    step_rows = batch_size * together
    mega = plan.megabatch_steps(len(order), step_rows) * step_rows  # whole steps: only the tail is partial
    steps: list[list[list[int]]] = []
    tail: list[list[int]] = []
    for start in range(0, len(order), mega):
        rows = _sorted_rows(order[start : start + mega], lengths, labels if plan.stratify else None, plan, rng)
        batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
        for i in range(0, len(batches), together):
            group = batches[i : i + together]
            full = len(group) == together and len(group[-1]) == batch_size
            if full:
                steps.append(group)
            else:
                tail.extend(group)
    rng.shuffle(steps)
    if steps:  # the longest step first: running out of memory shows on step one, not hours in
        longest = max(range(len(steps)), key=lambda s: max(lengths[i] for i in steps[s][0]))
        steps[0], steps[longest] = steps[longest], steps[0]
    return [batch for group in steps for batch in group] + tail


def padding_fraction(lengths: Sequence[int], batches: Sequence[Sequence[int]], multiple: int | None = None) -> float:
    """The share of computed token positions that are padding when each batch is padded to its longest row."""
    real = computed = 0
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        if multiple:
            longest = (longest + multiple - 1) // multiple * multiple
        real += sum(lengths[i] for i in batch)
        computed += longest * len(batch)
    return 1 - real / computed if computed else 0.0


class LengthGroupedOrder:
    """A torch Sampler (duck-typed) yielding grouped_batches' rows; the epoch comes from set_epoch."""

    def __init__(  # noqa: PLR0913 - a sampler's configuration (torch builds samplers from arguments)
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int,
        together: int = 1,
        labels: Sequence[int] | None = None,
        plan: GroupingPlan | None = None,
    ) -> None:
        self.lengths, self.batch_size, self.seed, self.together = list(lengths), batch_size, seed, together
        self.labels, self.plan = (list(labels) if labels is not None else None), plan or DEFAULT_PLAN
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        batches = grouped_batches(
            self.lengths, self.batch_size, self.seed, self.epoch, self.together, self.labels, self.plan
        )
        self.epoch += 1  # the next epoch differs even where nobody calls set_epoch
        return (i for batch in batches for i in batch)


def lengths_of(dataset: Any, key: str = "input_ids") -> list[int]:
    return [len(dataset[i][key]) for i in range(len(dataset))]


def class_labels_of(dataset: Any) -> list[int] | None:
    """One class id per row for sequence classification; None where labels are token sequences (SFT)."""
    if len(dataset) == 0 or not isinstance(dataset[0].get("labels"), int):
        return None
    return [int(dataset[i]["labels"]) for i in range(len(dataset))]


def train_order(args: Any, dataset: Any) -> LengthGroupedOrder:
    """The length-grouped order for a Trainer's TrainingArguments (batch, accumulation, ranks, seed)."""
    seed = args.data_seed if args.data_seed is not None else args.seed
    together = args.gradient_accumulation_steps * max(1, args.world_size)
    return LengthGroupedOrder(
        lengths_of(dataset), args.per_device_train_batch_size, seed, together, class_labels_of(dataset)
    )
