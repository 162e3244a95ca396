"""Which dtype and mixed-precision mode a run uses, from the spec and the hardware."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from finetune_api.v1alpha1.enums import Precision

from ..errors import ConfigError


@dataclass(frozen=True)
class PrecisionPlan:
    bf16: bool
    fp16: bool
    on_gpu: bool

    @property
    def name(self) -> str:
        return "bf16" if self.bf16 else "fp16" if self.fp16 else "fp32"


def plan_precision(asked: Precision) -> PrecisionPlan:
    on_gpu = torch.cuda.is_available()
    bf16_ok = on_gpu and torch.cuda.is_bf16_supported()
    if asked == Precision.AUTO:
        return PrecisionPlan(bf16=bf16_ok, fp16=on_gpu and not bf16_ok, on_gpu=on_gpu)
    if asked == Precision.FP16 and not on_gpu:
        raise ConfigError("spec.training.precision fp16 needs a GPU; use auto or fp32 on CPU")
    if asked == Precision.BF16 and on_gpu and not bf16_ok:
        raise ConfigError("spec.training.precision bf16: this GPU has no bf16 support; use auto or fp16")
    return PrecisionPlan(bf16=asked == Precision.BF16, fp16=asked == Precision.FP16, on_gpu=on_gpu)
