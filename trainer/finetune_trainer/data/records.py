"""Dataset rows -> task records, the canonical form hygiene and tokenization work on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from finetune_api.spec.enums import CausalFormat, TaskType
from finetune_api.spec.task import TaskSpec

from ..errors import DataError
from .files import require_columns


@dataclass(frozen=True)
class Record:
    """One example. `key` identifies its input, for duplicate and leakage checks."""

    fields: dict[str, Any]
    label: str | None = None

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


def columns_for(task: TaskSpec) -> dict[str, str]:
    """Spec field -> column, with the defaults applied."""
    if task.type == TaskType.SEQUENCE_CLASSIFICATION:
        cols = {"textColumn": task.text_column or "text", "labelColumn": task.label_column or "label"}
        if task.text_pair_column:
            cols["textPairColumn"] = task.text_pair_column
        return cols
    fmt = task.format or CausalFormat.PROMPT_COMPLETION
    if fmt == CausalFormat.PROMPT_COMPLETION:
        cols = {
            "promptColumn": task.prompt_column or "prompt",
            "completionColumn": task.completion_column or "completion",
        }
        if task.input_column:
            cols["inputColumn"] = task.input_column
        return cols
    if fmt == CausalFormat.CHAT:
        return {"messagesColumn": task.messages_column or "messages"}
    return {"textColumn": task.text_column or "text"}


def to_records(frame: pd.DataFrame, task: TaskSpec, label: str) -> list[Record]:
    cols = columns_for(task)
    require_columns(frame, cols, label)
    rows = frame.to_dict(orient="records")
    fmt = task.format or CausalFormat.PROMPT_COMPLETION
    out = []
    for number, row in enumerate(rows, start=1):
        if task.type == TaskType.SEQUENCE_CLASSIFICATION:
            fields = {"text": _text(row[cols["textColumn"]])}
            if "textPairColumn" in cols:
                fields["text_pair"] = _text(row[cols["textPairColumn"]])
            raw = row[cols["labelColumn"]]
            out.append(Record(fields, None if _missing(raw) else str(raw).strip()))
        elif fmt == CausalFormat.PROMPT_COMPLETION:
            prompt = _text(row[cols["promptColumn"]])
            extra = _text(row[cols["inputColumn"]]) if "inputColumn" in cols else ""
            if extra.strip():
                prompt = f"{prompt}\n\n{extra}"
            out.append(Record({"prompt": prompt, "completion": _text(row[cols["completionColumn"]])}))
        elif fmt == CausalFormat.CHAT:
            out.append(Record({"messages": _messages(row[cols["messagesColumn"]], label, number)}))
        else:
            out.append(Record({"text": _text(row[cols["textColumn"]])}))
    return out


def _missing(value: Any) -> bool:
    return (
        value is None or (isinstance(value, float) and pd.isna(value)) or (isinstance(value, str) and not value.strip())
    )


def _text(value: Any) -> str:
    return "" if _missing(value) else str(value)


def _content_text(content: Any) -> str:
    """Message content as text: a string, or a list of parts ({type: text, text|value: ...})."""
    if isinstance(content, list):
        return "".join(str(p.get("text", p.get("value", ""))) if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def _messages(value: Any, label: str, number: int) -> list[dict[str, str]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(f"{label}: row {number}: messages column is not a JSON list") from None
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, list):
        raise DataError(f"{label}: row {number}: messages must be a list of {{role, content}} objects")
    messages = []
    for m in value:
        if not isinstance(m, dict) or "content" not in m or ("role" not in m and "from" not in m):
            raise DataError(f"{label}: row {number}: each message needs 'role' and 'content'")
        role = str(m.get("role") or m.get("from"))
        role = {"human": "user", "gpt": "assistant"}.get(role, role)
        messages.append({"role": role, "content": _content_text(m["content"])})
    return messages
