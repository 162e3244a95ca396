"""The few-shot baseline: would k training examples in the prompt have done as well as tuning?

Demonstrations come from the training rows only (never an eval row, even a duplicate of one), drawn
with the job's seed, and the oldest are dropped first when a prompt would not fit maxLength. Causal-LM
rows are scored on their own completion only, like the zero-shot baseline; classification with a
decoder model scores each label's text after the demonstrations (in-context classification).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from finetune_api.v1alpha1.enums import CausalFormat

from ..data.records import Record
from ..data.tokenize import IGNORE, TokenizedSet, chat_ids, prompt_completion_ids
from ..errors import DataError


@dataclass(frozen=True)
class NotApplicable:
    """Why this job has no few-shot number (reported instead of a made-up one)."""

    reason: str


def select_demonstrations(
    train: Sequence[Record], evaluation: Sequence[Record], shots: int, seed: int
) -> list[list[Record]]:
    """k training records per eval row, seeded; a training record equal to any eval row is never used."""
    eval_keys = {r.key for r in evaluation}
    pool = [r for r in train if r.key not in eval_keys]
    if not pool:
        raise DataError("spec.evaluation.fewShot: every training row also appears in the eval set; none can serve")
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    k = min(shots, len(pool))
    return [rng.sample(pool, k) for _ in evaluation]


def fit_oldest_first(demos: Sequence[Record], length: Callable[[Sequence[Record]], int], limit: int) -> list[Record]:
    """Drop demonstrations from the front until the prompt built from the rest is at most `limit` tokens."""
    kept = list(demos)
    while kept and length(kept) > limit:
        kept.pop(0)
    return kept


def _pc_messages(demos: Sequence[Record]) -> list[dict[str, str]]:
    turns: list[dict[str, str]] = []
    for d in demos:
        turns += [
            {"role": "user", "content": d.fields["prompt"]},
            {"role": "assistant", "content": d.fields["completion"]},
        ]
    return turns


def _chat_messages(demos: Sequence[Record], record: Record) -> tuple[list[dict[str, str]], int]:
    """Demonstration turns as earlier turns of the eval conversation, after its system prompt if it has one."""
    own: list[dict[str, str]] = list(record.fields["messages"])
    system = own[:1] if own and own[0]["role"] == "system" else []
    history = [m for d in demos for m in d.fields["messages"] if m["role"] != "system"]
    return [*system, *history, *own[len(system) :]], len(system) + len(history)


def causal_example(
    record: Record, demos: Sequence[Record], tokenizer: Any, fmt: CausalFormat
) -> tuple[list[int], list[int]]:
    """Token ids with the demonstrations in front; labels only on the eval row's own completion."""
    if fmt == CausalFormat.PROMPT_COMPLETION:
        return prompt_completion_ids(record, tokenizer, _pc_messages(demos))
    if fmt == CausalFormat.CHAT:
        messages, first_own = _chat_messages(demos, record)
        return chat_ids(messages, tokenizer, score_from=first_own)
    raise ValueError(f"no few-shot prompt for format {fmt}")


def causal_few_shot_set(
    records: Sequence[Record], demos: Sequence[Sequence[Record]], tokenizer: Any, fmt: CausalFormat, max_length: int
) -> tuple[TokenizedSet, float]:
    """The eval rows with their demonstrations; also the mean number of demonstrations that fit."""
    examples: list[dict[str, list[int] | int]] = []
    truncated, used = 0, 0
    for record, own in zip(records, demos, strict=True):

        def length(d: Sequence[Record], r: Record = record) -> int:
            return len(causal_example(r, d, tokenizer, fmt)[0])

        kept = fit_oldest_first(own, length, max_length)
        ids, labels = causal_example(record, kept, tokenizer, fmt)
        if len(ids) > max_length:  # no demonstration fits: the row is cut exactly as the zero-shot one is
            ids, labels, truncated = ids[:max_length], labels[:max_length], truncated + 1
        if all(label == IGNORE for label in labels):
            continue
        used += len(kept)
        examples.append({"input_ids": ids, "labels": labels})
    return TokenizedSet(examples, truncated), used / max(len(examples), 1)


def causal_applicability(fmt: CausalFormat) -> NotApplicable | None:
    if fmt == CausalFormat.TEXT:
        return NotApplicable("task.format text has no prompt to put demonstrations in front of")
    return None
