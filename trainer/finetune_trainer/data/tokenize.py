"""Task records -> token ids (and loss labels), never padded: padding happens per batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from finetune_api.v1alpha1.enums import CausalFormat

from ..errors import DataError
from .records import Record

IGNORE = -100  # the label that takes a token out of the loss


@dataclass
class TokenizedSet:
    examples: list[dict[str, list[int] | int]]
    truncated: int

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, list[int] | int]:
        return self.examples[i]

    @property
    def tokens(self) -> int:
        return sum(len(e["input_ids"]) for e in self.examples)  # type: ignore[arg-type,misc]


def _cut(ids: list[int], max_length: int) -> tuple[list[int], bool]:
    return (ids[:max_length], True) if len(ids) > max_length else (ids, False)


def tokenize_classification(
    records: list[Record], tokenizer: Any, label_ids: dict[str, int], max_length: int, source: str
) -> TokenizedSet:
    texts = [r.fields["text"] for r in records]
    pairs = [r.fields.get("text_pair") for r in records]
    has_pairs = any(p is not None for p in pairs)
    enc = tokenizer(texts, pairs if has_pairs else None, truncation=False, add_special_tokens=True)
    examples: list[dict[str, list[int] | int]] = []
    truncated = 0
    for record, encoded in zip(records, enc["input_ids"], strict=True):
        if record.label not in label_ids:
            known = ", ".join(list(label_ids)[:20])
            raise DataError(
                f"{source}: {record.row}: label {record.label!r} is not one of the labels ({known}); "
                "fix the row or spec.task.labels"
            )
        ids, cut = _cut(list(encoded), max_length)
        if cut:
            ids[-1] = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else ids[-1]
        truncated += cut
        examples.append({"input_ids": ids, "labels": label_ids[record.label]})
    return TokenizedSet(examples, truncated)


def _eos(tokenizer: Any) -> str:
    return tokenizer.eos_token or ""


def tokenize_causal(records: list[Record], tokenizer: Any, fmt: CausalFormat, max_length: int) -> TokenizedSet:
    examples: list[dict[str, list[int] | int]] = []
    truncated = 0
    for record in records:
        if fmt == CausalFormat.PROMPT_COMPLETION:
            ids, labels = _prompt_completion(record, tokenizer)
        elif fmt == CausalFormat.CHAT:
            ids, labels = _chat(record, tokenizer)
        else:
            ids = tokenizer(record.fields["text"] + _eos(tokenizer), add_special_tokens=True)["input_ids"]
            labels = list(ids)
        if len(ids) > max_length:
            ids, labels, truncated = ids[:max_length], labels[:max_length], truncated + 1
        if all(label == IGNORE for label in labels):
            continue  # the prompt filled maxLength: nothing left to learn from this row
        examples.append({"input_ids": ids, "labels": labels})
    return TokenizedSet(examples, truncated)


def _prompt_completion(record: Record, tokenizer: Any) -> tuple[list[int], list[int]]:
    return prompt_completion_ids(record, tokenizer)


def prompt_completion_ids(
    record: Record, tokenizer: Any, history: Sequence[dict[str, str]] = ()
) -> tuple[list[int], list[int]]:
    """The row's prompt after earlier turns (few-shot demonstrations), its completion the only labels."""
    prompt, completion = record.fields["prompt"], record.fields["completion"]
    if getattr(tokenizer, "chat_template", None):
        # Instruct models were trained on their chat format; a prompt in that format starts closer to the target.
        prompt_text = tokenizer.apply_chat_template(
            [*history, {"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        completion_text = completion + _eos(tokenizer)
        prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    else:
        earlier = "".join(f"{m['content']}\n" if m["role"] == "user" else f"{m['content']}\n\n" for m in history)
        prompt_ids = tokenizer(earlier + prompt + "\n", add_special_tokens=True)["input_ids"]
        completion_text = completion + _eos(tokenizer)
    completion_ids = tokenizer(completion_text, add_special_tokens=False)["input_ids"]
    return list(prompt_ids) + list(completion_ids), [IGNORE] * len(prompt_ids) + list(completion_ids)


def _chat(record: Record, tokenizer: Any) -> tuple[list[int], list[int]]:
    return chat_ids(record.fields["messages"], tokenizer)


def chat_ids(messages: list[dict[str, str]], tokenizer: Any, score_from: int = 0) -> tuple[list[int], list[int]]:
    """The rendered conversation; labels on assistant replies from message `score_from` on."""
    if not getattr(tokenizer, "chat_template", None):
        raise DataError("task.format chat needs a tokenizer with a chat template; use prompt-completion or text")
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []  # character spans of assistant replies in the rendered conversation
    for i, message in enumerate(messages):
        if message["role"] != "assistant" or i < score_from:
            continue
        start = len(tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)) if i else 0
        end = len(tokenizer.apply_chat_template(messages[: i + 1], tokenize=False))
        spans.append((start, end))
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    labels = [
        token if any(s <= begin < e for s, e in spans) else IGNORE
        for token, (begin, _end) in zip(ids, enc["offset_mapping"], strict=True)
    ]
    return ids, labels
