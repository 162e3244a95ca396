"""spec.task: what the model learns to do, and which dataset columns feed it."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field, StringConstraints

from . import defaults
from .base import COLUMN_MAX, COLUMN_NAME, LIST_MAX, CelRule, SpecModel, applies_only_when
from .enums import CausalFormat, TaskType

Label = Annotated[str, StringConstraints(min_length=1, max_length=COLUMN_MAX, pattern=COLUMN_NAME)]

_CLASSIFICATION = (TaskType.SEQUENCE_CLASSIFICATION.value,)
_CAUSAL = (TaskType.CAUSAL_LM.value,)

# Which optional fields each task type accepts; the CEL rules and docs are generated from this.
TASK_FIELDS: dict[str, tuple[str, ...]] = {
    "textPairColumn": _CLASSIFICATION,
    "labelColumn": _CLASSIFICATION,
    "labels": _CLASSIFICATION,
    "format": _CAUSAL,
    "promptColumn": _CAUSAL,
    "inputColumn": _CAUSAL,
    "completionColumn": _CAUSAL,
    "messagesColumn": _CAUSAL,
}


def _column(description: str) -> Any:
    """An optional column name: bounded, and free of control characters."""
    return Field(default=None, min_length=1, max_length=COLUMN_MAX, pattern=COLUMN_NAME, description=description)


class TaskSpec(SpecModel):
    """The task and the column mapping from dataset rows to model inputs and targets."""

    type: TaskType = Field(
        description=(
            "sequence-classification: a label per text (a new classification head on the model). "
            "causal-lm: supervised fine-tuning of a generative model (next-token prediction)."
        )
    )
    text_column: str | None = _column(
        f"Column with the input text. Default '{defaults.TEXT_COLUMN}'. For causal-lm it is read when format is text."
    )
    text_pair_column: str | None = _column(
        "sequence-classification only: a second text column for pair tasks (e.g. premise/hypothesis)."
    )
    label_column: str | None = _column(
        f"sequence-classification only: column with the label (string or integer). Default '{defaults.LABEL_COLUMN}'."
    )
    labels: list[Label] | None = Field(
        default=None,
        min_length=2,
        max_length=LIST_MAX * 16,
        description=(
            "sequence-classification only: the label set in order (index = class id). Inferred from the "
            "training data, sorted, when omitted. Rows with other labels are a data error."
        ),
    )
    format: CausalFormat | None = Field(
        default=None,
        description=(
            "causal-lm only. prompt-completion: loss on the completion tokens only. chat: a list of "
            "{role, content} messages rendered with the tokenizer's chat template, loss on assistant turns. "
            f"text: plain text, loss on every token. Default {defaults.CAUSAL_FORMAT}."
        ),
    )
    prompt_column: str | None = _column(
        f"causal-lm prompt-completion: column with the prompt (instruction). Default '{defaults.PROMPT_COLUMN}'."
    )
    input_column: str | None = _column(
        "causal-lm prompt-completion: optional column appended to the prompt after a blank line "
        "(the Alpaca 'input' field)."
    )
    completion_column: str | None = _column(
        f"causal-lm prompt-completion: column with the target completion. Default '{defaults.COMPLETION_COLUMN}'."
    )
    messages_column: str | None = _column(
        f"causal-lm chat: column with the list of {{role, content}} messages. Default '{defaults.MESSAGES_COLUMN}'."
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = tuple(
        applies_only_when(field, "type", types, "spec.task") for field, types in TASK_FIELDS.items()
    )
