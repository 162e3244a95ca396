"""prompt-tuning and prefix-tuning: learned virtual tokens; the model's weights stay frozen."""

from __future__ import annotations

from typing import Any

from torch import nn

from finetune_api.resolve import need
from finetune_api.v1alpha1.enums import MethodType
from finetune_api.v1alpha1.method import MethodSpec

from .adapters import peft_task_type
from .base import Method, MethodContext


class PromptTuning(Method):
    types = (MethodType.PROMPT_TUNING,)
    produces_adapter = True

    def prepare(self, model: nn.Module, spec: MethodSpec, ctx: MethodContext) -> nn.Module:
        from peft import PromptTuningConfig, PromptTuningInit, get_peft_model

        init: dict[str, Any] = {}
        if spec.init_text:
            init = {
                "prompt_tuning_init": PromptTuningInit.TEXT,
                "prompt_tuning_init_text": spec.init_text,
                "tokenizer_name_or_path": ctx.model_dir,
            }
        config = PromptTuningConfig(
            task_type=peft_task_type(ctx.task),
            num_virtual_tokens=need(spec.virtual_tokens, "spec.method.virtualTokens"),
            **init,
        )
        return get_peft_model(model, config)


class PrefixTuning(Method):
    types = (MethodType.PREFIX_TUNING,)
    produces_adapter = True

    def prepare(self, model: nn.Module, spec: MethodSpec, ctx: MethodContext) -> nn.Module:
        from peft import PrefixTuningConfig, get_peft_model

        config = PrefixTuningConfig(
            task_type=peft_task_type(ctx.task),
            num_virtual_tokens=need(spec.virtual_tokens, "spec.method.virtualTokens"),
        )
        return get_peft_model(model, config)
