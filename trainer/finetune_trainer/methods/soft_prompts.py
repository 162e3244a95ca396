"""prompt-tuning and prefix-tuning: learned virtual tokens; the model's weights stay frozen."""

from __future__ import annotations

from typing import Any

from torch import nn

from finetune_api.resolved import SoftPromptMethod
from finetune_api.v1alpha1.enums import MethodType

from .adapters import peft_task_type
from .base import Method, MethodContext


class PromptTuning(Method[SoftPromptMethod]):
    types = (MethodType.PROMPT_TUNING,)
    produces_adapter = True

    def prepare(self, model: nn.Module, spec: SoftPromptMethod, ctx: MethodContext) -> nn.Module:
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
            num_virtual_tokens=spec.virtual_tokens,
            **init,
        )
        return get_peft_model(model, config)


class PrefixTuning(Method[SoftPromptMethod]):
    types = (MethodType.PREFIX_TUNING,)
    produces_adapter = True

    def prepare(self, model: nn.Module, spec: SoftPromptMethod, ctx: MethodContext) -> nn.Module:
        from peft import PrefixTuningConfig, get_peft_model

        config = PrefixTuningConfig(
            task_type=peft_task_type(ctx.task),
            num_virtual_tokens=spec.virtual_tokens,
        )
        return get_peft_model(model, config)
