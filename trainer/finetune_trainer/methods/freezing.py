"""full, feature-extraction and partial: which weights train, with the model left as it is."""

from __future__ import annotations

from torch import nn

from finetune_api.resolved import PartialMethod, WholeModelMethod
from finetune_api.v1alpha1.enums import MethodType, TaskType

from .base import Method, MethodContext, freeze_all, head_prefixes, transformer_blocks, unfreeze


class Full(Method[WholeModelMethod]):
    types = (MethodType.FULL,)

    def prepare(self, model: nn.Module, spec: WholeModelMethod, ctx: MethodContext) -> nn.Module:
        for p in model.parameters():
            p.requires_grad_(True)
        return model


def _head_modules(model: nn.Module, task: TaskType) -> list[nn.Module]:
    if task == TaskType.CAUSAL_LM:
        head = model.get_output_embeddings()  # type: ignore[operator]  # a transformers PreTrainedModel
        return [head] if isinstance(head, nn.Module) else []
    return [getattr(model, name) for name in head_prefixes(model)]


class FeatureExtraction(Method[WholeModelMethod]):
    types = (MethodType.FEATURE_EXTRACTION,)

    def prepare(self, model: nn.Module, spec: WholeModelMethod, ctx: MethodContext) -> nn.Module:
        freeze_all(model)
        unfreeze(_head_modules(model, ctx.task))
        return model


class Partial(Method[PartialMethod]):
    types = (MethodType.PARTIAL,)

    def prepare(self, model: nn.Module, spec: PartialMethod, ctx: MethodContext) -> nn.Module:
        _, blocks = transformer_blocks(model)
        n = spec.layers
        if n > len(blocks):
            from ..errors import ConfigError

            raise ConfigError(
                f"spec.method.layers is {n}, but the model has {len(blocks)} blocks; use at most {len(blocks)}"
            )
        freeze_all(model)
        unfreeze([*blocks[len(blocks) - n :], *_head_modules(model, ctx.task)])
        # The final norm sits after the blocks and shapes what the head sees; it trains with them.
        unfreeze(
            [
                m
                for name, m in model.named_modules()
                if name.endswith(("final_layer_norm", "norm", "ln_f")) and "layers" not in name
            ]
        )
        return model
