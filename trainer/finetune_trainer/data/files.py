"""Reading jsonl, json, csv and parquet files into rows, with errors that name file, row and column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from finetune_api.spec.enums import DataFormat
from finetune_api.storage_uri import parse_uri

from ..errors import DataError


def format_of(uri: str, given: DataFormat | None) -> DataFormat:
    if given is not None:
        return given
    ext = parse_uri(uri).extension.lstrip(".")
    try:
        return DataFormat(ext)
    except ValueError:
        raise DataError(f"{uri}: cannot tell the format from {ext!r}; set spec.dataset.format") from None


def read_table(path: Path, fmt: DataFormat, encoding: str, label: str) -> pd.DataFrame:
    """Rows of one data file. `label` is how the file is named in messages (its URI)."""
    if not path.exists() or path.stat().st_size == 0:
        raise DataError(f"{label} is empty: no rows to train on")
    try:
        if fmt == DataFormat.PARQUET:
            frame = pd.read_parquet(path)
        elif fmt == DataFormat.CSV:
            frame = pd.read_csv(path, encoding=encoding, dtype=str, keep_default_na=False)
        elif fmt == DataFormat.JSONL:
            frame = pd.DataFrame(_read_jsonl(path, encoding, label))
        else:
            frame = pd.DataFrame(_read_json(path, encoding, label))
    except UnicodeDecodeError as exc:
        # Parsers report offsets within their read buffer; decode the whole file to find the real spot.
        raw = path.read_bytes()
        try:
            raw.decode(encoding)
            start = exc.start
        except UnicodeDecodeError as full:
            start = full.start
        line = raw[:start].count(b"\n") + 1
        raise DataError(
            f"{label}: not valid {encoding} at byte {start} (line {line}); "
            "set spec.dataset.encoding to the file's encoding, e.g. latin-1"
        ) from None
    except DataError:
        raise
    except (ValueError, pd.errors.ParserError, OSError) as exc:
        raise DataError(f"{label}: cannot be read as {fmt}: {str(exc)[:300]}") from None
    if frame.empty:
        raise DataError(f"{label} holds no rows")
    return frame


def _read_jsonl(path: Path, encoding: str, label: str) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding=encoding) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{label}: line {number} is not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{label}: line {number} is a JSON {type(row).__name__}, expected an object")
            rows.append(row)
    return rows


def _read_json(path: Path, encoding: str, label: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding=encoding))
    except json.JSONDecodeError as exc:
        raise DataError(f"{label}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if isinstance(data, dict):  # {"data": [...]} or {"train": [...]}: one list inside
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(f"{label}: expected a JSON list of objects (or an object holding one list)")
        data = lists[0]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(f"{label}: expected a JSON list of objects")
    return data


def require_columns(frame: pd.DataFrame, columns: dict[str, str], label: str) -> None:
    """`columns` maps the spec field that names a column to the column name."""
    for field, column in columns.items():
        if column not in frame.columns:
            shown = ", ".join(map(str, list(frame.columns)[:20]))
            raise DataError(
                f"{label} has no column {column!r} (columns: {shown}); set spec.task.{field} to the right column"
            )
