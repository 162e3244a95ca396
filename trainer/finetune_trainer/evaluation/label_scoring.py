"""In-context classification: after the demonstrations, which label's text does the untouched LM find likeliest?

Only decoder (causal) language models can continue a prompt; an encoder such as MiniLM has no
next-token head to score a label with, so its few-shot result is "not applicable", not a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from ..data.records import Record
from .few_shot import NotApplicable, fit_oldest_first
from .metrics import classification_metrics


def decoder_applicability(model_dir: str | Path) -> NotApplicable | None:
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    kind = AutoConfig.from_pretrained(model_dir).model_type
    if kind in MODEL_FOR_MASKED_LM_MAPPING_NAMES or kind not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return NotApplicable(
            f"{kind} is an encoder model: it has no next-token head to score label text after demonstrations, "
            "so in-context classification does not apply (it needs a decoder such as GPT-2 or SmolLM2)"
        )
    return None


def _shown(record: Record) -> str:
    pair = record.fields.get("text_pair")
    text = str(record.fields["text"])
    return text + (f"\n{pair}" if pair is not None else "")


def classification_prompt(demos: Sequence[Record], record: Record) -> str:
    shown = "".join(f"Text: {_shown(d)}\nLabel: {d.label}\n\n" for d in demos)
    return f"{shown}Text: {_shown(record)}\nLabel:"


def continuation_log_likelihood(logits: torch.Tensor, ids: Sequence[int], start: int, end: int) -> float:
    """Sum of log p(ids[p] | ids[:p]) for p in [start, end): the logits at p-1 predict the token at p."""
    log_probs = torch.log_softmax(logits[start - 1 : end - 1].float(), dim=-1)
    picked = log_probs.gather(1, torch.tensor(list(ids[start:end]), dtype=torch.long).unsqueeze(1))
    return float(picked.sum())


def best_label(scores: Sequence[float]) -> int:
    """The label with the highest log-likelihood; ties go to the first (the order of spec.task.labels)."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def in_context_classification(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[tuple[Record, Sequence[Record]]],
    labels: Sequence[str],
    max_length: int,
) -> tuple[dict[str, float], float]:
    """Accuracy and macro-F1 of picking, per eval row, the label whose text the model finds likeliest, and the
    mean number of demonstrations that fitted in front of a row. `prompts`: each eval row with its demonstrations."""
    label_ids = [list(tokenizer(" " + label, add_special_tokens=False)["input_ids"]) for label in labels]
    room = max_length - max(len(ids) for ids in label_ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    predicted, gold, used = [], [], 0
    for record, own in prompts:

        def context(d: Sequence[Record], r: Record = record) -> list[int]:
            return list(tokenizer(classification_prompt(d, r), add_special_tokens=True)["input_ids"])

        kept = fit_oldest_first(own, lambda d: len(context(d)), room)
        used += len(kept)
        ctx = context(kept)[-room:]  # even without demonstrations: keep the end, where "Label:" is
        rows = [ctx + ids for ids in label_ids]
        longest = max(len(r) for r in rows)
        batch = torch.full((len(rows), longest), pad, dtype=torch.long)
        mask = torch.zeros_like(batch)
        for i, row in enumerate(rows):
            batch[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
        with torch.no_grad():
            logits = model(input_ids=batch.to(device), attention_mask=mask.to(device)).logits.cpu()
        scores = [continuation_log_likelihood(logits[i], rows[i], len(ctx), len(rows[i])) for i in range(len(rows))]
        predicted.append(best_label(scores))
        gold.append(list(labels).index(str(record.label)))
    m = classification_metrics(SimpleNamespace(predictions=predicted, label_ids=gold))
    return {"eval_accuracy": m["accuracy"], "eval_macro_f1": m["macro_f1"]}, used / max(len(gold), 1)
