"""spec.dataset: where the training and evaluation rows come from, and how much of them to use."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from . import defaults
from .base import NO_CREDENTIALS, NO_PARENT_SEGMENTS, STORAGE_URI, URI_MAX, CelRule, SpecModel, cel
from .enums import DataFormat


class DatasetSpec(SpecModel):
    """Training and evaluation data: jsonl, json, csv or parquet files (format from the extension)."""

    train: str = Field(
        max_length=URI_MAX,
        pattern=STORAGE_URI,
        json_schema_extra=cel(NO_PARENT_SEGMENTS, NO_CREDENTIALS),
        description="The training file: an s3:// object or a local/PVC path ending in .jsonl, .json, .csv or .parquet.",
    )
    eval: str | None = Field(
        default=None,
        max_length=URI_MAX,
        pattern=STORAGE_URI,
        json_schema_extra=cel(NO_PARENT_SEGMENTS, NO_CREDENTIALS),
        description=f"A separate evaluation file. Give this or evalSplit, not both; with neither, evalSplit {defaults.EVAL_SPLIT} is used.",
    )
    eval_split: float | None = Field(
        default=None,
        gt=0.0,
        le=0.5,
        description=(
            "Hold out this fraction of the training rows for evaluation (seeded by training.seed; "
            "stratified by label for classification)."
        ),
    )
    format: DataFormat | None = Field(
        default=None,
        description="The file format, when the extension does not tell it.",
    )
    encoding: str = Field(
        default="utf-8",
        max_length=32,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Text encoding of csv/json/jsonl files, e.g. utf-8 or latin-1.",
    )
    max_samples: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description="Use at most this many training rows (after deduplication, chosen with training.seed).",
    )
    max_eval_samples: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description="Evaluate on at most this many rows (chosen with training.seed).",
    )
    max_length: int | None = Field(
        default=None,
        ge=8,
        le=131_072,
        description=(
            "Truncate tokenized rows to this many tokens (the count of truncated rows is reported). "
            f"Default {defaults.MAX_LENGTH_CAP}. Never more than the tokenizer's model_max_length: a larger value "
            "is lowered to it (positions past the model's limit have no embedding)."
        ),
    )
    deduplicate: bool = Field(
        default=True,
        description="Drop exact duplicate training rows before training (the count is reported).",
    )
    allow_overlap: bool = Field(
        default=False,
        description=(
            "Accept rows that appear in both training and evaluation data. Off by default: the job fails "
            "with the overlap count and examples, since leaked rows inflate evaluation metrics."
        ),
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="!(has(self.eval) && has(self.evalSplit))",
            message="set spec.dataset.eval or spec.dataset.evalSplit, not both",
            field="evalSplit",
        ),
    )
