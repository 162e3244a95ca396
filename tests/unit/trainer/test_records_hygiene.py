"""Rows -> records -> hygiene, on small in-memory tables: no model, no files, no network."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from finetune_api.measurements import DataHygiene
from finetune_api.resolve import resolve
from finetune_api.v1alpha1.job import FineTuneJobSpec
from finetune_api.v1alpha1.task import TaskSpec
from finetune_trainer.data import hygiene
from finetune_trainer.data.files import Table
from finetune_trainer.data.records import Record, to_records
from finetune_trainer.errors import DataError


def _task(**task: Any) -> TaskSpec:
    spec = {
        "model": {"uri": "s3://models/m/"},
        "task": task,
        "dataset": {"train": "s3://data/train.csv"},
        "method": {"type": "full"},
        "training": {"epochs": 1},
        "output": {"uri": "s3://models/out/j/"},
    }
    return resolve(FineTuneJobSpec.model_validate(spec)).task


def _table(**columns: list[Any]) -> Table:
    frame = pd.DataFrame(columns)
    return Table(frame, list(range(1, len(frame) + 1)), "line")


def test_classification_rows_use_the_default_columns_and_strip_labels() -> None:
    table = _table(text=["good", "bad", "  "], label=[" pos ", "neg", ""])
    records = to_records(table, _task(type="sequence-classification"), "train.csv")
    assert [r.fields["text"] for r in records] == ["good", "bad", "  "]
    assert records[2].is_empty, "blank text makes an empty row (dropped and counted by hygiene)"
    assert [r.label for r in records] == ["pos", "neg", None], "an empty label is missing, not ''"


def test_a_missing_column_names_the_file_the_column_and_the_spec_field() -> None:
    with pytest.raises(DataError, match=r"train\.csv.*'text'.*spec\.task\.textColumn"):
        to_records(_table(sentence=["x"], label=["a"]), _task(type="sequence-classification"), "train.csv")


def test_prompt_completion_appends_the_input_after_a_blank_line() -> None:
    table = _table(instruction=["Translate"], input=["hola"], output=["hello"])
    task = _task(type="causal-lm", promptColumn="instruction", inputColumn="input", completionColumn="output")
    (record,) = to_records(table, task, "alpaca.json")
    assert record.fields == {"prompt": "Translate\n\nhola", "completion": "hello"}


def _rec(text: str, label: str | None = "a") -> Record:
    return Record({"text": text}, label)


def test_empty_and_duplicate_rows_are_dropped_and_counted() -> None:
    report = DataHygiene()
    rows = [_rec("x"), _rec(" "), _rec("x"), _rec("x", "b"), _rec("y")]
    kept = hygiene.deduplicate(hygiene.drop_empty(rows, report), report)
    assert [(r.fields["text"], r.label) for r in kept] == [("x", "a"), ("x", "b"), ("y", "a")]
    assert (report.empty_dropped, report.duplicates_dropped) == (1, 1)


def test_leaked_rows_fail_unless_allowed() -> None:
    train, evaluation = [_rec("x"), _rec("y")], [_rec("y"), _rec("z")]
    with pytest.raises(DataError, match=r"1 evaluation rows also appear in the training data.*allowOverlap"):
        hygiene.check_overlap(train, evaluation, allow=False, report=DataHygiene())
    report = DataHygiene()
    hygiene.check_overlap(train, evaluation, allow=True, report=report)
    assert report.overlap == 1


def test_the_split_is_seeded_and_keeps_each_labels_share() -> None:
    rows = [_rec(f"a{i}", "a") for i in range(90)] + [_rec(f"b{i}", "b") for i in range(10)]
    train, held = hygiene.split(rows, 0.1, seed=7, stratify=True)
    assert hygiene.count_labels(held) == {"a": 9, "b": 1} and len(train) == 90
    assert hygiene.split(rows, 0.1, seed=7, stratify=True) == (train, held), "same seed, same split"
    assert hygiene.split(rows, 0.1, seed=8, stratify=True) != (train, held)


def test_sampling_is_seeded_and_a_no_op_under_the_limit() -> None:
    rows = [_rec(str(i)) for i in range(50)]
    assert hygiene.sample(rows, None, 1) is rows and hygiene.sample(rows, 60, 1) is rows
    assert hygiene.sample(rows, 5, 1) == hygiene.sample(rows, 5, 1) and len(hygiene.sample(rows, 5, 1)) == 5
