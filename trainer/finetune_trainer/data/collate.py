"""Batches padded to their own longest row (never to maxLength), to a multiple of 8 on GPUs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .tokenize import IGNORE


@dataclass
class PadToLongest:
    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(e["input_ids"]) for e in batch)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            longest = (longest + m - 1) // m * m
        ids = torch.full((len(batch), longest), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        sequence_labels = isinstance(batch[0]["labels"], list)
        labels = torch.full((len(batch), longest), IGNORE, dtype=torch.long) if sequence_labels else None
        for row, example in enumerate(batch):
            n = len(example["input_ids"])
            ids[row, :n] = torch.tensor(example["input_ids"], dtype=torch.long)
            mask[row, :n] = 1
            if labels is not None:
                labels[row, :n] = torch.tensor(example["labels"], dtype=torch.long)
        out = {"input_ids": ids, "attention_mask": mask}
        out["labels"] = labels if labels is not None else torch.tensor([e["labels"] for e in batch], dtype=torch.long)
        return out
