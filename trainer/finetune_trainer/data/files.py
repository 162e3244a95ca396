"""Reading jsonl, json, csv and parquet files into rows, with errors that name file, row and column.

Every row keeps its place in the file, in the numbering a user can look up: the line for csv and
jsonl (a quoted csv field may span lines: the row's first line), the 0-based row index for
parquet and for the items of a json list.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from finetune_api.storage_uri import parse_uri
from finetune_api.v1alpha1.enums import DataFormat

from ..errors import ConfigError, DataError

# What a file that is not plain text starts with; a .csv that is really gzip is said to be gzip.
MAGIC = {
    b"\x1f\x8b": "gzip-compressed (decompress it with gunzip)",
    b"PK\x03\x04": "a zip archive (unpack it)",
    b"BZh": "bzip2-compressed (decompress it with bunzip2)",
    b"\xfd7zXZ\x00": "xz-compressed (decompress it with unxz)",
    b"\x28\xb5\x2f\xfd": "zstd-compressed (decompress it with unzstd)",
    b"PAR1": "a parquet file (name it .parquet or set spec.dataset.format: parquet)",
}
csv.field_size_limit(1 << 26)  # one long document per field is fine; the default stops at 128 KiB


@dataclass(frozen=True)
class Table:
    """The rows of one file, and where each row is in it."""

    frame: pd.DataFrame
    numbers: list[int]
    unit: str  # "line" (1-based) or "row index" (0-based)

    def row(self, i: int) -> str:
        return f"{self.unit} {self.numbers[i]}"


def format_of(uri: str, given: DataFormat | None) -> DataFormat:
    if given is not None:
        return given
    ext = parse_uri(uri).extension.lstrip(".")
    try:
        return DataFormat(ext)
    except ValueError:
        raise DataError(f"{uri}: cannot tell the format from {ext!r}; set spec.dataset.format") from None


def _sniff(path: Path, fmt: DataFormat, label: str) -> None:
    with path.open("rb") as fh:
        head = fh.read(8)
    if fmt == DataFormat.PARQUET:
        if not head.startswith(b"PAR1"):
            raise DataError(
                f"{label} is not a parquet file (no PAR1 header); give the file's real format in spec.dataset.format"
            )
        return
    for magic, what in MAGIC.items():
        if head.startswith(magic):
            raise DataError(f"{label} is {what}, not a plain {fmt} file; point spec.dataset at the {fmt} file itself")


def require_file(path: Path, label: str) -> None:
    """A local data file must be a file: a folder or a missing path is named as such."""
    if path.is_dir():
        example = f"{label.rstrip('/')}/train.csv"
        raise DataError(f"{label} is a folder, not a file; name the data file in it (e.g. {example})")
    if not path.exists():
        raise DataError(f"{label} does not exist; check the path (a relative path starts at the working directory)")


def read_table(path: Path, fmt: DataFormat, encoding: str, label: str) -> Table:
    """Rows of one data file. `label` is how the file is named in messages (its URI)."""
    require_file(path, label)
    if path.stat().st_size == 0:
        raise DataError(f"{label} is empty: no rows to train on")
    _sniff(path, fmt, label)
    try:
        if fmt == DataFormat.PARQUET:
            frame = pd.read_parquet(path)
            table = Table(frame, list(range(len(frame))), "row index")
        elif fmt == DataFormat.CSV:
            table = _read_csv(path, encoding, label)
        elif fmt == DataFormat.JSONL:
            rows, numbers = _read_jsonl(path, encoding, label)
            table = Table(pd.DataFrame(rows), numbers, "line")
        else:
            rows = _read_json(path, encoding, label)
            table = Table(pd.DataFrame(rows), list(range(len(rows))), "row index")
    except LookupError:
        raise ConfigError(f"spec.dataset.encoding: {encoding!r} is not a known text encoding; use e.g. utf-8") from None
    except UnicodeDecodeError as exc:
        raise _decode_error(path, encoding, label, exc) from None
    except DataError:
        raise
    except (ValueError, pd.errors.ParserError, OSError) as exc:
        raise DataError(f"{label}: cannot be read as {fmt}: {str(exc)[:300]}") from None
    if table.frame.empty:
        raise DataError(f"{label} holds no rows")
    return table


def _decode_error(path: Path, encoding: str, label: str, exc: UnicodeDecodeError) -> DataError:
    # Parsers report offsets within their read buffer; decode the whole file to find the real spot.
    raw = path.read_bytes()
    try:
        raw.decode(encoding)
        start = exc.start
    except UnicodeDecodeError as full:
        start = full.start
    line = raw[:start].count(b"\n") + 1
    return DataError(
        f"{label}: not valid {encoding} at byte {start} (line {line}); "
        "set spec.dataset.encoding to the file's encoding, e.g. latin-1"
    )


def _read_csv(path: Path, encoding: str, label: str) -> Table:
    rows: list[list[str]] = []
    numbers: list[int] = []
    with path.open(encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None:
                raise DataError(f"{label} holds no rows")
            header[0] = header[0].removeprefix("\ufeff")  # a byte-order mark is not part of the name
            _unique_header(header, label)
            last = reader.line_num
            for row in reader:
                first, last = last + 1, reader.line_num
                if not row:
                    continue  # a blank line
                if len(row) > len(header):
                    raise DataError(
                        f"{label}: line {first} has {len(row)} fields but the header has {len(header)}; "
                        "quote fields that contain commas"
                    )
                rows.append(row + [""] * (len(header) - len(row)))
                numbers.append(first)
        except csv.Error as exc:
            raise DataError(f"{label}: line {reader.line_num} is not valid csv ({exc})") from None
    return Table(pd.DataFrame(rows, columns=header, dtype=object), numbers, "line")


def _unique_header(header: list[str], label: str) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if name in seen:
            raise DataError(
                f"{label}: the header (line 1) names column {name!r} twice (columns {seen[name]} and {position}); "
                "give every column its own name"
            )
        seen[name] = position


def _read_jsonl(path: Path, encoding: str, label: str) -> tuple[list[dict[str, Any]], list[int]]:
    rows, numbers = [], []
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
            numbers.append(number)
    return rows, numbers


def _read_json(path: Path, encoding: str, label: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding=encoding))
    except json.JSONDecodeError as exc:
        raise DataError(f"{label}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if isinstance(data, dict):
        if len(data) == 1 and isinstance(next(iter(data.values())), list):  # {"data": [...]}: the list inside
            data = next(iter(data.values()))
        else:
            keys = ", ".join(list(data)[:5])
            raise DataError(
                f"{label}: holds one JSON object (keys {keys}) where a list of records belongs; write "
                '[{"text": ..., "label": ...}, ...], or JSON Lines (.jsonl) with one record per line'
            )
    if not isinstance(data, list):
        raise DataError(f"{label}: expected a JSON list of objects")
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataError(f"{label}: row index {index} is a JSON {type(row).__name__}, expected an object")
    return data


def require_columns(frame: pd.DataFrame, columns: dict[str, str], label: str) -> None:
    """`columns` maps the spec field that names a column to the column name."""
    names = [str(c) for c in frame.columns]
    for field, column in columns.items():
        if column in names:
            continue
        padded = [n for n in names if n.strip() == column.strip()]
        if padded:
            raise DataError(
                f"{label} has no column {column!r}, but has {padded[0]!r}: the header has stray spaces; "
                f"remove them from the header, or set spec.task.{field}: {padded[0]!r}"
            )
        shown = ", ".join(map(repr, names[:20]))
        raise DataError(
            f"{label} has no column {column!r} (columns: {shown}); set spec.task.{field} to the right column"
        )
