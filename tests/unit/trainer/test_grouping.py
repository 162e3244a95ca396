"""Length-grouped order: every row once, little padding, the same order on every rank, and really used."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
import torch

from finetune_trainer.data.collate import PackFlat, PadToLongest
from finetune_trainer.data.grouping import (
    GroupingPlan,
    LengthGroupedOrder,
    class_labels_of,
    grouped_batches,
    lengths_of,
    padding_fraction,
)


def _tweet_like(n: int, seed: int = 0) -> list[int]:
    """Lengths skewed like short texts: mostly 15-45 tokens, a long tail to ~100."""
    rng = random.Random(seed)  # noqa: S311 - test data
    return [min(100, max(5, int(rng.lognormvariate(3.4, 0.35)))) for _ in range(n)]


def _random_batches(n: int, batch: int, seed: int) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed).shuffle(order)  # noqa: S311 - test data
    return [order[i : i + batch] for i in range(0, n, batch)]


@pytest.mark.parametrize(("n", "batch", "together"), [(320, 32, 1), (1000, 16, 4), (37, 8, 2), (5, 8, 1)])
def test_every_row_once_and_only_the_tail_partial(n: int, batch: int, together: int) -> None:
    batches = grouped_batches(_tweet_like(n), batch, seed=1, together=together)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(n))
    # A DataLoader re-chunks the flat order by batch_size: that must give back these very batches.
    assert [flat[i : i + batch] for i in range(0, n, batch)] == batches
    full_steps = n // (batch * together) * together
    assert all(len(b) == batch for b in batches[:full_steps])


def test_small_datasets_are_sorted_fully() -> None:
    """transformers sorts 320 rows in batches of 32 two batches at a time (33% padding here); a full sort ~11%."""
    lengths = _tweet_like(320)
    grouped = padding_fraction(lengths, grouped_batches(lengths, 32, seed=42))
    shuffled = padding_fraction(lengths, _random_batches(320, 32, seed=42))
    ideal_order = sorted(range(320), key=lambda i: lengths[i])
    ideal = padding_fraction(lengths, [ideal_order[i : i + 32] for i in range(0, 320, 32)])
    assert grouped == pytest.approx(ideal)
    assert grouped < shuffled / 2


def test_order_is_seeded_per_epoch_and_shuffled_by_step() -> None:
    lengths = _tweet_like(3200)
    first = grouped_batches(lengths, 32, seed=7, epoch=0)
    assert first == grouped_batches(lengths, 32, seed=7, epoch=0)
    assert first != grouped_batches(lengths, 32, seed=7, epoch=1)
    assert first != grouped_batches(lengths, 32, seed=8, epoch=0)
    # Not one long descending sort: batch maxima go up as well as down through the epoch.
    maxima = [max(lengths[i] for i in b) for b in first]
    assert any(a < b for a, b in itertools.pairwise(maxima))
    assert max(lengths[i] for i in first[0]) == max(lengths)  # out of memory shows on the first step


def test_sampler_epochs_follow_set_epoch() -> None:
    lengths = _tweet_like(200)
    order = LengthGroupedOrder(lengths, 16, seed=3)
    epoch0, epoch1 = list(order), list(order)
    assert epoch0 != epoch1
    order.set_epoch(0)
    assert list(order) == epoch0
    assert len(order) == 200


def test_ranks_of_a_step_get_neighbouring_lengths() -> None:
    """Two ranks, accelerate's sharding of one order: disjoint rows, every row once, similar lengths per step."""
    from accelerate.data_loader import BatchSamplerShard
    from torch.utils.data import BatchSampler

    lengths = _tweet_like(640)
    shards = [
        list(BatchSamplerShard(BatchSampler(LengthGroupedOrder(lengths, 16, seed=5, together=2), 16, False), 2, r))
        for r in range(2)
    ]
    assert sorted(i for shard in shards for b in shard for i in b) == list(range(640))

    def gaps(batches: list[list[int]]) -> float:  # how much longer one rank's batch is than the other's
        pairs = zip(batches[::2], batches[1::2], strict=True)
        return sum(abs(max(lengths[i] for i in b0) - max(lengths[i] for i in b1)) for b0, b1 in pairs) / 20

    interleaved = [b for step in zip(*shards, strict=True) for b in step]
    assert gaps(interleaved) < gaps(_random_batches(640, 16, seed=5)) / 4


def _examples(lengths: list[int]) -> list[dict[str, object]]:
    return [{"input_ids": list(range(1, n + 1)), "labels": 0} for n in lengths]


def test_the_runner_trains_in_this_order() -> None:
    """Through the runner's Trainer class: group_by_length gives our order and its padding, not transformers'."""
    from transformers import TrainingArguments

    from finetune_trainer.training.loop import trainer_class

    lengths = _tweet_like(320)
    args = TrainingArguments(
        output_dir="unused",
        per_device_train_batch_size=32,
        max_steps=10,
        use_cpu=True,
        report_to="none",
        seed=42,
        data_seed=42,
        train_sampling_strategy="group_by_length",
        remove_unused_columns=False,
    )
    collator = PadToLongest(pad_token_id=0)
    trainer = trainer_class()(
        model=torch.nn.Linear(1, 1), args=args, train_dataset=_examples(lengths), data_collator=collator
    )
    for _ in trainer.get_train_dataloader():
        pass
    expected = padding_fraction(lengths, grouped_batches(lengths, 32, seed=42))
    assert collator.padding_fraction == pytest.approx(expected)
    assert collator.real_tokens == sum(lengths)


def test_collators_count_what_they_compute() -> None:
    pad = PadToLongest(pad_token_id=0, pad_to_multiple_of=8)
    pad([{"input_ids": [1, 2, 3], "labels": 1}, {"input_ids": [4], "labels": 0}])
    assert (pad.real_tokens, pad.computed_tokens) == (4, 16)
    assert pad.padding_fraction == pytest.approx(0.75)
    packed = PackFlat()
    assert packed.padding_fraction is None  # nothing collated yet
    packed([{"input_ids": [1, 2], "labels": [1, 2]}, {"input_ids": [3], "labels": [3]}])
    assert packed.padding_fraction == 0.0
    assert lengths_of(_examples([3, 1])) == [3, 1]


def test_training_counts_only_its_own_batches() -> None:
    """The eval collator is another instance, so evaluation never adds to train_padding_fraction."""
    from types import SimpleNamespace

    from finetune_trainer.training.loop import choose_collators

    spec: Any = SimpleNamespace(training=SimpleNamespace(packing=False))
    collators = choose_collators(spec, SimpleNamespace(pad_token_id=0), model=None, on_gpu=False)
    assert collators.train is not collators.eval
    collators.eval([{"input_ids": [1, 2, 3], "labels": 1}, {"input_ids": [4], "labels": 0}])
    assert collators.train.padding_fraction is None


def _length_tells_label(n: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """Two labels, one third positive; positives are long and negatives short, as in many review corpora."""
    rng = random.Random(seed)  # noqa: S311 - test data
    labels = [1 if rng.random() < 1 / 3 else 0 for _ in range(n)]
    lengths = [rng.randint(60, 120) if y else rng.randint(10, 50) for y in labels]
    return lengths, labels


def _label_shares(batches: list[list[int]], labels: list[int]) -> list[float]:
    return [sum(labels[i] for i in b) / len(b) for b in batches]


def test_a_length_sort_alone_gives_batches_of_one_label() -> None:
    """Issue 19's failure, in miniature: sorting by length sorts by label too when length tells them apart."""
    lengths, labels = _length_tells_label(800)
    batches = grouped_batches(lengths, 16, seed=1, labels=labels, plan=GroupingPlan(stratify=False))
    assert sum(share in (0.0, 1.0) for share in _label_shares(batches, labels)) >= 45  # of 50 batches


def test_the_default_order_keeps_each_label_in_every_batch() -> None:
    lengths, labels = _length_tells_label(800)
    batches = grouped_batches(lengths, 16, seed=1, labels=labels)
    overall = sum(labels) / len(labels)
    assert all(abs(share - overall) <= 2 / 16 for share in _label_shares(batches, labels))
    assert sorted(i for b in batches for i in b) == list(range(800))
    # Less padding than random batches (within each label the rows are sorted by length), though far
    # more than a plain sort: here every batch must span both labels' length ranges.
    grouped = padding_fraction(lengths, batches)
    assert grouped < padding_fraction(lengths, _random_batches(800, 16, seed=1)) * 0.9


def test_the_trainer_passes_class_labels_and_none_for_token_labels() -> None:
    assert class_labels_of([{"input_ids": [1], "labels": 2}, {"input_ids": [1, 2], "labels": 0}]) == [2, 0]
    assert class_labels_of([{"input_ids": [1, 2], "labels": [1, 2]}]) is None
    assert class_labels_of([]) is None


def test_small_datasets_are_cut_into_several_sorted_groups() -> None:
    plan = GroupingPlan(max_megabatch=50, min_megabatches=8)
    assert plan.megabatch_steps(rows=800, step_rows=16) == 6  # 50 steps in an epoch, 8 groups
    assert plan.megabatch_steps(rows=100_000, step_rows=16) == 50
    assert plan.megabatch_steps(rows=10, step_rows=16) == 1


def test_the_runner_keeps_the_label_mix_in_its_batches() -> None:
    """train_order reads the class labels from the tokenized rows: the Trainer's batches keep the mix."""
    from types import SimpleNamespace

    from finetune_trainer.data.grouping import train_order

    lengths, labels = _length_tells_label(320)
    rows = [{"input_ids": list(range(n)), "labels": y} for n, y in zip(lengths, labels, strict=True)]
    args = SimpleNamespace(
        data_seed=None, seed=42, gradient_accumulation_steps=1, world_size=1, per_device_train_batch_size=16
    )
    flat = list(train_order(args, rows))
    shares = _label_shares([flat[i : i + 16] for i in range(0, 320, 16)], labels)
    assert all(abs(share - sum(labels) / 320) <= 2 / 16 for share in shares)
