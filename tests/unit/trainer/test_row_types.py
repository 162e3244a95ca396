"""Every dataset value has the type its role needs; refusals name the file, the row in its own numbering,
the column and the fix. Tiny files in tmp_path, no model."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from finetune_api.measurements import DataHygiene
from finetune_api.resolve import resolve_task
from finetune_api.v1alpha1.enums import DataFormat
from finetune_api.v1alpha1.task import TaskSpec
from finetune_trainer.data import hygiene
from finetune_trainer.data.files import read_table
from finetune_trainer.data.records import Record, to_records
from finetune_trainer.errors import DataError

# Resolved, as the trainer reads them: the default columns filled in.
CLASSIFY = resolve_task(
    TaskSpec.model_validate({"type": "sequence-classification", "textColumn": "text", "labelColumn": "label"})
)
CHAT = resolve_task(TaskSpec.model_validate({"type": "causal-lm", "format": "chat"}))
PROMPTS = resolve_task(TaskSpec.model_validate({"type": "causal-lm", "format": "prompt-completion"}))


def _records(path: Path, task: TaskSpec, fmt: DataFormat | None = None) -> list[Record]:
    fmt = fmt or DataFormat(path.suffix.lstrip("."))
    return to_records(read_table(path, fmt, "utf-8", str(path)), task, str(path))


def _jsonl(tmp_path: Path, rows: list[dict[str, Any]], name: str = "d.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _refused(path: Path, task: TaskSpec, fmt: DataFormat | None = None) -> str:
    with pytest.raises(DataError) as err:
        _records(path, task, fmt)
    assert str(path) in err.value.message
    return err.value.message


def test_jsonl_text_that_is_a_number_names_the_line_and_column(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, [{"text": "fine", "label": "a"}, {"text": 42, "label": "b"}])
    message = _refused(path, CLASSIFY)
    assert "line 2, column 'text' (spec.task.textColumn): is a number (42), not text" in message


def test_jsonl_text_that_is_a_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "ok", "label": "a"}\n\n{"text": ["a", "b"], "label": "b"}\n')
    assert "line 3, column 'text'" in _refused(path, CLASSIFY)  # the blank line 2 still counts


def test_parquet_text_column_of_list_type_names_the_row_index(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pd.DataFrame({"text": [["a", "b"], ["c"]], "label": ["x", "y"]}).to_parquet(path)
    message = _refused(path, CLASSIFY)
    assert "row index 0, column 'text'" in message and "is a list" in message


def test_label_that_is_a_list_is_refused_but_integers_are_labels(tmp_path: Path) -> None:
    ok = _records(_jsonl(tmp_path, [{"text": "a", "label": 0}, {"text": "b", "label": 1.0}]), CLASSIFY)
    assert [r.label for r in ok] == ["0", "1"]
    bad = _jsonl(tmp_path, [{"text": "a", "label": ["x"]}], "bad.jsonl")
    assert "line 1, column 'label' (spec.task.labelColumn): is a list" in _refused(bad, CLASSIFY)


def test_chat_content_not_a_string(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": {"x": 1}}, {"role": "assistant", "content": "hi"}]}]
    message = _refused(_jsonl(tmp_path, rows), CHAT)
    assert "line 1, column 'messages' (spec.task.messagesColumn): message 1: content is an object" in message


def test_chat_unknown_role(tmp_path: Path) -> None:
    rows = [
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
        {"messages": [{"role": "wizard", "content": "a"}, {"role": "assistant", "content": "b"}]},
    ]
    message = _refused(_jsonl(tmp_path, rows), CHAT)
    assert "line 2" in message and "role 'wizard' is not one of system, user, assistant, tool" in message


def test_chat_without_an_assistant_turn_says_so(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": "hello"}, {"role": "user", "content": "anyone?"}]}]
    assert "no assistant reply" in _refused(_jsonl(tmp_path, rows), CHAT)


def test_sharegpt_roles_and_text_parts_are_accepted(tmp_path: Path) -> None:
    rows = [
        {"messages": [{"from": "human", "value": "hi"}, {"role": "gpt", "content": [{"type": "text", "text": "yo"}]}]}
    ]
    (record,) = _records(_jsonl(tmp_path, rows), CHAT)
    assert record.fields["messages"] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]


def test_empty_completion_is_refused_and_empty_rows_are_dropped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("prompt,completion\nsay hi,hi\n,\nsay bye,\n")
    message = _refused(path, PROMPTS)
    assert "line 4, column 'completion' (spec.task.completionColumn): the completion is empty" in message
    path.write_text("prompt,completion\nsay hi,hi\n,\n")
    report = DataHygiene()
    kept = hygiene.drop_empty(_records(path, PROMPTS), report, "d.csv")
    assert len(kept) == 1 and report.empty_dropped == 1
    assert "empty rows dropped: 1 (d.csv line 3)" in " ".join(report.lines())


def test_nan_text_is_an_empty_row_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["a", None], "label": ["x", "y"]}).to_parquet(path)
    records = _records(path, CLASSIFY)
    assert records[1].is_empty and records[1].row == "row index 1"


def test_csv_rows_carry_their_first_line_even_after_a_multiline_field(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"two\nlines",a\n\nthird,\n')
    records = _records(path, CLASSIFY)
    assert [r.row for r in records] == ["line 2", "line 5"]
    assert records[1].label is None


def test_duplicate_csv_column_names(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label,text\na,b,c\n")
    message = _refused(path, CLASSIFY)
    assert "names column 'text' twice (columns 1 and 3)" in message


def test_header_with_a_stray_space_says_so(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text, label\na,b\n")
    message = _refused(path, CLASSIFY)
    assert "has ' label': the header has stray spaces" in message and "labelColumn" in message


def test_gzip_named_csv_is_called_gzip(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(gzip.compress(b"text,label\na,b\n"))
    message = _refused(path, CLASSIFY)
    assert "gzip-compressed" in message and "encoding" not in message


def test_dataset_path_that_is_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "data.csv"
    folder.mkdir()
    message = _refused(folder, CLASSIFY)
    assert "is a folder, not a file" in message and "does not exist" not in message


def test_too_many_fields_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,b\nc,d,e\n")
    assert "line 3 has 3 fields but the header has 2" in _refused(path, CLASSIFY)
