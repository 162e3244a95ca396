"""The one place a method type is mapped to its implementation."""

from __future__ import annotations

from typing import Any

from finetune_api.v1alpha1.enums import MethodType

from .base import Method
from .freezing import FeatureExtraction, Full, Partial
from .ia3 import IA3
from .layerwise import LayerwiseLR
from .lora import LoRA
from .soft_prompts import PrefixTuning, PromptTuning

METHODS: dict[MethodType, Method[Any]] = {}
for _impl in (Full(), FeatureExtraction(), Partial(), LayerwiseLR(), LoRA(), PromptTuning(), PrefixTuning(), IA3()):
    for _type in _impl.types:
        METHODS[_type] = _impl

_missing = set(MethodType) - set(METHODS)
if _missing:
    raise ImportError(f"methods without an implementation: {_missing}")


def get_method(method_type: MethodType) -> Method[Any]:
    return METHODS[method_type]
