"""Dataset rows -> task records, the canonical form hygiene and tokenization work on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from finetune_api.resolved import ChatTask, ClassificationTask, PromptCompletionTask, ResolvedTask

from .fields import Cell, as_label, as_messages, as_text
from .files import Table, require_columns


@dataclass(frozen=True)
class Record:
    """One example. `key` identifies its input, for duplicate and leakage checks."""

    fields: dict[str, Any]
    label: str | None = None
    row: str = field(default="", compare=False)  # where in its file: "line 7", "row index 3"

    @property
    def key(self) -> str:
        return json.dumps(self.fields, sort_keys=True, ensure_ascii=False)

    @property
    def is_empty(self) -> bool:
        return not any(_has_text(v) for v in self.fields.values())


def _has_text(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list):
        return any(_has_text(m.get("content", "")) if isinstance(m, dict) else _has_text(m) for m in value)
    return value is not None


def columns_for(task: ResolvedTask) -> dict[str, str]:
    """Spec field -> column, from the resolved task."""
    if isinstance(task, ClassificationTask):
        cols = {"textColumn": task.text_column, "labelColumn": task.label_column}
        if task.text_pair_column:
            cols["textPairColumn"] = task.text_pair_column
        return cols
    if isinstance(task, PromptCompletionTask):
        cols = {"promptColumn": task.prompt_column, "completionColumn": task.completion_column}
        if task.input_column:
            cols["inputColumn"] = task.input_column
        return cols
    if isinstance(task, ChatTask):
        return {"messagesColumn": task.messages_column}
    return {"textColumn": task.text_column}


def to_records(table: Table, task: ResolvedTask, label: str) -> list[Record]:
    """Each row as a Record, every value checked for the type its role needs (data/fields.py)."""
    cols = columns_for(task)
    require_columns(table.frame, cols, label)
    out = []
    for i, row in enumerate(table.frame.to_dict(orient="records")):
        where = table.row(i)

        def cell(field: str, row_: dict[Any, Any] = row, where_: str = where) -> tuple[Any, Cell]:
            return row_[cols[field]], Cell(label, where_, cols[field], field)

        if isinstance(task, ClassificationTask):
            values = {"text": as_text(*cell("textColumn"))}
            if "textPairColumn" in cols:
                values["text_pair"] = as_text(*cell("textPairColumn"))
            out.append(Record(values, as_label(*cell("labelColumn")), where))
        elif isinstance(task, PromptCompletionTask):
            prompt = as_text(*cell("promptColumn"))
            extra = as_text(*cell("inputColumn")) if "inputColumn" in cols else ""
            if extra.strip():
                prompt = f"{prompt}\n\n{extra}"
            completion, completion_cell = cell("completionColumn")
            completion = as_text(completion, completion_cell)
            if prompt.strip() and not completion.strip():
                raise completion_cell.error(
                    "the completion is empty, so the row has nothing to learn", "fill it in or drop the row"
                )
            out.append(Record({"prompt": prompt, "completion": completion}, row=where))
        elif isinstance(task, ChatTask):
            out.append(Record({"messages": as_messages(*cell("messagesColumn"))}, row=where))
        else:
            out.append(Record({"text": as_text(*cell("textColumn"))}, row=where))
    return out
