"""lora and qlora: low-rank adapters on chosen linear layers (qlora: over a 4-bit quantized base)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from finetune_api.resolved import LoraMethod, QloraMethod
from finetune_api.v1alpha1.enums import MethodType
from finetune_api.v1alpha1.method import QuantizationSpec

from ..errors import ConfigError
from .adapters import check_targets, peft_task_type
from .base import Method, MethodContext


class LoRA(Method[LoraMethod | QloraMethod]):
    types = (MethodType.LORA, MethodType.QLORA)
    produces_adapter = True

    def prepare(self, model: nn.Module, spec: LoraMethod | QloraMethod, ctx: MethodContext) -> nn.Module:
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

        check_targets(model, spec.target_modules)
        config = LoraConfig(
            task_type=peft_task_type(ctx.task),
            r=spec.r,
            lora_alpha=spec.alpha,  # type: ignore[arg-type]  # peft accepts float scaling
            lora_dropout=spec.dropout,
            target_modules=_targets(spec.target_modules),
        )
        if isinstance(spec, QloraMethod):
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)  # type: ignore[no-untyped-call]
        return get_peft_model(model, config)


def _targets(names: list[str] | None) -> Any:
    if names == ["all-linear"]:
        return "all-linear"
    return names  # None: an architecture finetune_api.v1alpha1.defaults does not list; PEFT chooses


def quantization_config(q: QuantizationSpec) -> Any:
    """The bitsandbytes config for loading a qlora base model; CUDA only."""
    if not torch.cuda.is_available():
        raise ConfigError("spec.method.type qlora needs a CUDA GPU (bitsandbytes 4-bit kernels); on CPU use lora")
    from transformers import BitsAndBytesConfig

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[q.compute_dtype.value]
    if q.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)  # type: ignore[no-untyped-call]
    return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True,
        bnb_4bit_quant_type=q.quant_type.value,
        bnb_4bit_use_double_quant=q.double_quant,
        bnb_4bit_compute_dtype=dtype,
    )
