"""layerwise-lr: every weight trains, with learning rates shrinking geometrically from the top block down."""

from __future__ import annotations

from typing import Any

from torch import nn

from finetune_api.resolved import LayerwiseMethod
from finetune_api.v1alpha1.enums import MethodType

from .base import Method, MethodContext, decay_groups, transformer_blocks


class LayerwiseLR(Method[LayerwiseMethod]):
    types = (MethodType.LAYERWISE_LR,)

    def prepare(self, model: nn.Module, spec: LayerwiseMethod, ctx: MethodContext) -> nn.Module:
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    def parameter_groups(self, model: nn.Module, spec: LayerwiseMethod, ctx: MethodContext) -> list[dict[str, Any]]:
        decay = spec.decay
        blocks_name, blocks = transformer_blocks(model)
        depth = len(blocks)
        # Depth index: embeddings 0, block i -> i + 1, head and final norm -> depth + 1.
        by_depth: dict[int, list[tuple[str, nn.Parameter]]] = {}
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            if name.startswith(blocks_name + "."):
                level = int(name[len(blocks_name) + 1 :].split(".", 1)[0]) + 1
            elif "embed" in name:
                level = 0
            else:
                level = depth + 1
            by_depth.setdefault(level, []).append((name, p))
        groups = []
        for level, named in sorted(by_depth.items()):
            lr = ctx.learning_rate * decay ** (depth + 1 - level)
            for group in decay_groups(named, lr, ctx.weight_decay):
                group["layer"] = level
                groups.append(group)
        return groups
