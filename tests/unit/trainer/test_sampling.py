"""maxSamples keeps in training every label the evaluation rows hold, or says which it would lose."""

from __future__ import annotations

import pytest

from finetune_trainer.data.hygiene import sample
from finetune_trainer.data.records import Record
from finetune_trainer.errors import DataError


def _rows(counts: dict[str, int]) -> list[Record]:
    return [Record({"text": f"{label} {i}"}, label) for label, n in counts.items() for i in range(n)]


def test_a_rare_label_survives_sampling() -> None:
    rows = _rows({"common": 990, "rare": 1})
    for seed in range(20):
        picked = sample(rows, 10, seed, keep_labels={"common", "rare"})
        assert len(picked) == 10 and {r.label for r in picked} == {"common", "rare"}


def test_without_eval_labels_sampling_is_unchanged() -> None:
    rows = _rows({"a": 50, "b": 50})
    assert sample(rows, 10, 3) == sample(rows, 10, 3, keep_labels=set())


def test_too_few_samples_for_the_labels_says_which_are_lost() -> None:
    rows = _rows({"a": 5, "b": 5, "c": 5})
    with pytest.raises(DataError) as err:
        sample(rows, 2, 0, keep_labels={"a", "b", "c"})
    assert "spec.dataset.maxSamples" in err.value.message and "at least 3" in err.value.message
    assert "would lose [" in err.value.message
