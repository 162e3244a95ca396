"""Batches padded to their own longest row (never to maxLength), to a multiple of 8 on GPUs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .tokenize import IGNORE


@dataclass
class TokenCount:
    """Token positions this collator handed to the model, and how many of them were real tokens.

    Counted in the process that collates: with DataLoader workers, those are the workers, and the
    count stays zero here (padding_fraction is then None).
    """

    real_tokens: int = field(default=0, init=False)
    computed_tokens: int = field(default=0, init=False)

    def count(self, real: int, computed: int) -> None:
        self.real_tokens += real
        self.computed_tokens += computed

    @property
    def padding_fraction(self) -> float | None:
        return 1 - self.real_tokens / self.computed_tokens if self.computed_tokens else None


@dataclass
class PadToLongest(TokenCount):
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
        self.count(int(mask.sum()), mask.numel())
        out = {"input_ids": ids, "attention_mask": mask}
        out["labels"] = labels if labels is not None else torch.tensor([e["labels"] for e in batch], dtype=torch.long)
        return out


@dataclass
class PackFlat(TokenCount):
    """Padding-free packing: a batch becomes one row with position ids restarting at every example.

    With no attention mask and restarting position ids, the model's mask builder gives each example
    its own block of the causal mask (varlen kernels under flash attention), so examples never attend
    to each other. The first label of each example is ignored, so no example learns to predict
    another's first token.
    """

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for example in batch:
            n = len(example["input_ids"])
            ids += example["input_ids"]
            labels += [IGNORE, *example["labels"][1:]]
            positions += list(range(n))
        self.count(len(ids), len(ids))
        return {
            "input_ids": torch.tensor([ids], dtype=torch.long),
            "labels": torch.tensor([labels], dtype=torch.long),
            "position_ids": torch.tensor([positions], dtype=torch.long),
        }


def prepare_for_packing(model: Any) -> bool:
    """Make the model keep packed examples apart; False when it cannot.

    transformers' mask builder reads restarting position ids as example boundaries only without a
    KV cache, so the cache is switched off (training never uses it anyway).
    """
    import inspect
    import sys

    base = getattr(model, "get_base_model", lambda: model)()
    module = sys.modules.get(type(base).__module__)
    takes_positions = "position_ids" in inspect.signature(base.forward).parameters
    if not (takes_positions and module is not None and hasattr(module, "create_causal_mask")):
        return False
    base.config.use_cache = False
    return True


def dense_attention(model: Any) -> str | None:
    """The model's attention implementation when it has no variable-length kernel, else None.

    Flash attention runs each example of a packed row on its own (varlen). SDPA and eager attention
    get a block-diagonal mask instead and compute the whole row's attention, masking most of it away:
    on the benchmark's Alpaca rows (8 per batch, ~1,450 tokens a packed row) that is 2.5x the attention
    scores of random padded batches and 5.6x those of length-grouped ones, which also trained faster
    on CPU (see BENCHMARKS.md, SFT).
    """
    base = getattr(model, "get_base_model", lambda: model)()
    implementation = str(getattr(base.config, "_attn_implementation", None) or "eager")
    return None if "flash" in implementation else implementation
