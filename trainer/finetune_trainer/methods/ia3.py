"""ia3: learned vectors that rescale attention keys/values and feed-forward activations."""

from __future__ import annotations

from torch import nn

from finetune_api.resolved import Ia3Method
from finetune_api.v1alpha1.enums import MethodType

from .adapters import check_targets, peft_task_type
from .base import Method, MethodContext


class IA3(Method[Ia3Method]):
    types = (MethodType.IA3,)
    produces_adapter = True

    def prepare(self, model: nn.Module, spec: Ia3Method, ctx: MethodContext) -> nn.Module:
        from peft import IA3Config, get_peft_model

        check_targets(model, spec.target_modules)
        check_targets(model, spec.feedforward_modules, "feedforwardModules")
        config = IA3Config(
            task_type=peft_task_type(ctx.task),
            target_modules=spec.target_modules,
            feedforward_modules=spec.feedforward_modules,
        )
        return get_peft_model(model, config)
