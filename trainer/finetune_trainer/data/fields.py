"""Each dataset value checked against the type its role needs, before any row becomes a Record.

A text, prompt or completion must be a string (a missing value counts as empty: such rows are
dropped by design and reported); a label a string or an integer; messages a list of {role, content}
with string content and a known role. Anything else stops the job with the file, the row (in the
file's own numbering), the column and the fix: a number or a list in a text column is a broken
export, and training on its repr would publish a model of garbage.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import DataError

ROLES = ("system", "user", "assistant", "tool")
ROLE_ALIASES = {"human": "user", "gpt": "assistant", "bot": "assistant", "model": "assistant"}


@dataclass(frozen=True)
class Cell:
    """Where a value sits: the file (as the spec names it), the row, the column and the spec field naming it."""

    source: str
    row: str  # "line 7" (csv, jsonl) or "row index 3" (parquet, json)
    column: str
    field: str

    def error(self, problem: str, fix: str) -> DataError:
        return DataError(
            f"{self.source}: {self.row}, column {self.column!r} (spec.task.{self.field}): {problem}; {fix}"
        )


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return type(value).__name__ in ("NAType", "NaTType")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float) or (type(value).__module__ == "numpy" and hasattr(value, "dtype")):
        return "a list" if getattr(value, "ndim", 0) else "a number"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _shown(value: Any) -> str:
    text = repr(value.tolist() if hasattr(value, "tolist") else value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_text(value: Any, cell: Cell) -> str:
    """A text-like field (text, text pair, prompt, completion, input)."""
    if isinstance(value, str):
        return value
    if is_missing(value):
        return ""
    raise cell.error(
        f"is {_kind(value)} ({_shown(value)}), not text",
        "write it as a string (quote numbers in JSON; a parquet column must have type string)",
    )


def as_label(value: Any, cell: Cell) -> str | None:
    """A class label: a string or an integer (1.0 read from a column with gaps counts as 1)."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return str(value).lower()
    if _kind(value) == "a number":
        number = float(value)
        if number.is_integer():
            return str(int(number))
    raise cell.error(
        f"is {_kind(value)} ({_shown(value)}), not a class label",
        "give each row one label: a string or an integer",
    )


def _content(content: Any, cell: Cell, turn: int) -> str:
    """Message content: a string, or a list of text parts ({type: text, text: ...})."""
    if isinstance(content, str):
        return content
    if hasattr(content, "tolist"):
        content = content.tolist()
    if isinstance(content, list):
        parts = []
        for part in content:
            piece = part.get("text", part.get("value")) if isinstance(part, dict) else part
            if not isinstance(piece, str):
                raise cell.error(
                    f"message {turn}: a content part is {_kind(piece)} ({_shown(part)}), not text",
                    "give content as a string or a list of {type: text, text: ...} parts",
                )
            parts.append(piece)
        return "".join(parts)
    raise cell.error(
        f"message {turn}: content is {_kind(content) if content is not None else 'null'} ({_shown(content)}), "
        "not a string",
        "give every message its text as a string",
    )


def as_messages(value: Any, cell: Cell) -> list[dict[str, str]]:
    """A conversation: a list (or its JSON text) of {role, content}; needs an assistant reply to learn from."""
    if is_missing(value):
        return []
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise cell.error(f"is not a JSON list ({exc.msg})", "write the messages as a JSON list") from None
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, list):
        raise cell.error(f"is {_kind(value)}, not a list of messages", "give a list of {role, content} objects")
    out = []
    for turn, message in enumerate(value, start=1):
        if not isinstance(message, dict):
            raise cell.error(f"message {turn} is {_kind(message)}, not an object", "write {role, content} objects")
        role = message.get("role", message.get("from"))
        content = message.get("content", message.get("value"))
        if role is None or ("content" not in message and "value" not in message):
            raise cell.error(f"message {turn} needs 'role' and 'content'", "give every message both")
        if not isinstance(role, str) or ROLE_ALIASES.get(role, role) not in ROLES:
            raise cell.error(
                f"message {turn}: role {_shown(role)} is not one of {', '.join(ROLES)}",
                "use those roles (human and gpt are read as user and assistant)",
            )
        out.append({"role": ROLE_ALIASES.get(role, role), "content": _content(content, cell, turn)})
    has_text = any(m["content"].strip() for m in out)
    if has_text and not any(m["role"] == "assistant" and m["content"].strip() for m in out):
        raise cell.error(
            "the conversation has no assistant reply, so there is nothing to learn from it",
            "add the assistant's turn or drop the row",
        )
    return out
