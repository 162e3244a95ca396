"""What every method provides, and the model anatomy helpers they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import torch
from torch import nn

from finetune_api.v1alpha1.enums import MethodType, TaskType
from finetune_api.v1alpha1.method import MethodSpec

from ..errors import ConfigError


@dataclass
class MethodContext:
    task: TaskType
    model_dir: str
    learning_rate: float
    weight_decay: float


S = TypeVar("S", bound=MethodSpec)


class Method(Generic[S]):
    """A method prepares a loaded model for training and builds its optimizer parameter groups.

    S is the family's resolved spec (finetune_api.resolved): its parameters are set, by type.
    """

    types: ClassVar[tuple[MethodType, ...]] = ()
    produces_adapter: ClassVar[bool] = False

    def prepare(self, model: nn.Module, spec: S, ctx: MethodContext) -> nn.Module:
        raise NotImplementedError

    def parameter_groups(self, model: nn.Module, spec: S, ctx: MethodContext) -> list[dict[str, Any]]:
        return decay_groups(
            [(n, p) for n, p in model.named_parameters() if p.requires_grad], ctx.learning_rate, ctx.weight_decay
        )


def decay_groups(named: list[tuple[str, nn.Parameter]], lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on biases and normalisation weights (decay there only hurts)."""
    decay = [p for n, p in named if p.ndim >= 2 and "norm" not in n.lower()]
    no_decay = [p for n, p in named if not (p.ndim >= 2 and "norm" not in n.lower())]
    groups = []
    if decay:
        groups.append({"params": decay, "lr": lr, "weight_decay": weight_decay})
    if no_decay:
        groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0})
    return groups


def transformer_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The stack of transformer blocks: the longest ModuleList of identical modules."""
    best: tuple[str, nn.ModuleList] | None = None
    for name, module in model.named_modules():
        uniform = isinstance(module, nn.ModuleList) and len(module) > 0 and len({type(m) for m in module}) == 1
        if uniform and (best is None or len(module) > len(best[1])):
            best = (name, module)
    if best is None:
        raise ConfigError(f"cannot find the transformer blocks of {type(model).__name__}; use full or lora")
    return best


def head_prefixes(model: nn.Module) -> list[str]:
    """Parameter-name prefixes of the task head: everything outside the backbone."""
    base = getattr(model, "base_model_prefix", "")
    names = {n.split(".", 1)[0] for n, _ in model.named_parameters()}
    return sorted(n for n in names if n != base)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    total = trainable = 0
    for p in model.parameters():
        n = p.numel()
        if hasattr(p, "quant_storage") or p.__class__.__name__ == "Params4bit":
            n *= 2  # 4-bit parameters pack two values per byte element
        total += n
        trainable += n if p.requires_grad else 0
    return trainable, total


def freeze_all(model: nn.Module) -> None:
    for p in model.parameters():
        p.requires_grad_(False)


def unfreeze(modules: list[nn.Module]) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(True)


def embedding_dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype
