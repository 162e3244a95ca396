"""Catastrophic forgetting: perplexity on general reference text before and after training.

The reference is the user's own text file or, by default, the built-in general English text (an
English Wikipedia excerpt from LLaMA-Factory's sdist on PyPI, shipped inside the trainer package so an
offline pod has it). It is
refused when it is the training data itself: that would measure learning, not forgetting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from finetune_api.measurements import Forgetting

from ..errors import ConfigError, DataError

BUILTIN = "built-in: English Wikipedia excerpt (48 kB of wiki_demo.txt from the llamafactory 0.9.5 sdist)"
BUILTIN_PATH = Path(__file__).parent / "reference" / "wiki_en.txt"  # see reference/NOTICE
WINDOW = 512
CHARS_PER_TOKEN = 8  # generous: read only the head of a large file, then tokenize and cut exactly


@dataclass(frozen=True)
class Reference:
    path: Path
    description: str


def builtin_reference() -> Reference:
    return Reference(BUILTIN_PATH, BUILTIN)


def read_reference(ref: Reference, max_tokens: int, training_hashes: Sequence[str]) -> str:
    from ..storage.store import sha256_file

    if sha256_file(ref.path) in set(training_hashes):
        raise ConfigError(
            f"spec.evaluation.forgetting.reference {ref.description} is the training data; forgetting is measured "
            "on text the job does not train on: name another file or leave it unset for the built-in text"
        )
    with ref.path.open("rb") as fh:
        head = fh.read(max_tokens * CHARS_PER_TOKEN)
    text = head.decode("utf-8", errors="ignore" if len(head) == max_tokens * CHARS_PER_TOKEN else "strict").strip()
    if not text:
        raise DataError(f"spec.evaluation.forgetting.reference {ref.description} is empty; give a text file")
    return text


def windows(ids: Sequence[int], max_tokens: int, window: int = WINDOW) -> list[list[int]]:
    """The first max_tokens ids in consecutive windows (each scored on its own, without context carried over)."""
    ids = list(ids)[:max_tokens]
    return [ids[i : i + window] for i in range(0, len(ids), window) if len(ids[i : i + window]) > 1]


def perplexity(model: Any, chunks: Sequence[Sequence[int]], batch_size: int) -> float:
    """exp of the mean next-token loss over every predicted token of every window."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for start in range(0, len(chunks), batch_size):
            batch = chunks[start : start + batch_size]
            longest = max(len(c) for c in batch)
            ids = torch.zeros((len(batch), longest), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, chunk in enumerate(batch):
                ids[i, : len(chunk)], mask[i, : len(chunk)] = torch.tensor(list(chunk)), 1
            ids, mask = ids.to(device), mask.to(device)
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=mask).logits.float()
            logits = logits[:, -ids.shape[1] :]  # prompt/prefix tuning may prepend virtual tokens
            nll = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
            )
            keep = mask[:, 1:].reshape(-1).bool()
            total += float(nll[keep].sum())
            count += int(keep.sum())
    finally:
        model.train(was_training)
    return math.exp(min(total / max(count, 1), 50.0))


def summary(reference: str, tokens: int, before: float, after: float | None) -> Forgetting:
    return Forgetting(reference=reference, tokens=tokens, before=before, after=after)
