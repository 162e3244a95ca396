"""spec.method: how the model is adapted, and the parameters of each method family.

The wire format is one flat object (a structural CRD schema cannot express a tagged union), so
which parameter belongs to which method is a table here; the CEL rules, the docs and the
trainer's method registry all read it.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from . import defaults
from .base import LIST_MAX, CelRule, SpecModel, applies_only_when
from .enums import ComputeDtype, MethodType, QuantType

M = MethodType
METHOD_FIELDS: dict[str, tuple[str, ...]] = {
    "r": (M.LORA, M.QLORA),
    "alpha": (M.LORA, M.QLORA),
    "dropout": (M.LORA, M.QLORA),
    "targetModules": (M.LORA, M.QLORA, M.IA3),
    "feedforwardModules": (M.IA3,),
    "quantization": (M.QLORA,),
    "layers": (M.PARTIAL,),
    "decay": (M.LAYERWISE_LR,),
    "virtualTokens": (M.PROMPT_TUNING, M.PREFIX_TUNING),
    "initText": (M.PROMPT_TUNING,),
}

ModuleName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.*-]+$")]


class QuantizationSpec(SpecModel):
    """How QLoRA quantizes the frozen base weights (bitsandbytes; needs a CUDA GPU)."""

    bits: Literal[4, 8] = Field(default=4, description="Bits per base weight: 4 (QLoRA) or 8.")
    quant_type: QuantType = Field(
        default=QuantType.NF4, description="4-bit data type: nf4 (normal float, the QLoRA default) or fp4."
    )
    double_quant: bool = Field(
        default=True, description="Quantize the quantization constants too (saves ~0.4 bits per weight)."
    )
    compute_dtype: ComputeDtype = Field(
        default=ComputeDtype.BF16, description="Dtype of the matrix multiplications on the dequantized weights."
    )


class MethodSpec(SpecModel):
    """The adaptation method. Parameters that do not belong to the chosen type are rejected."""

    type: MethodType = Field(
        description=(
            "full: train every weight. feature-extraction: freeze the backbone, train a new head. "
            "partial: train the top `layers` blocks and the head. layerwise-lr: train everything with the "
            "learning rate shrinking by `decay` per layer from the top. lora / qlora (4-bit base, GPU only): "
            "low-rank adapters. prompt-tuning / prefix-tuning: learned virtual tokens. ia3: learned "
            "activation scaling vectors."
        )
    )
    r: int | None = Field(
        default=None, ge=1, le=1024, description=f"lora/qlora: adapter rank. Default {defaults.LORA_R}."
    )
    alpha: float | None = Field(
        default=None,
        gt=0,
        le=4096,
        description=f"lora/qlora: scaling numerator (scale = alpha / r). Default {defaults.LORA_ALPHA_PER_R} x r.",
    )
    dropout: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description=f"lora/qlora: dropout on the adapter input. Default {defaults.LORA_DROPOUT}.",
    )
    target_modules: list[ModuleName] | None = Field(
        default=None,
        min_length=1,
        max_length=LIST_MAX,
        description=(
            "lora/qlora/ia3: names (suffixes) of the modules to adapt, e.g. [q_proj, v_proj], or "
            "[all-linear]. Default per architecture (attention projections). Names that match no module "
            "in the model fail validation before training."
        ),
    )
    feedforward_modules: list[ModuleName] | None = Field(
        default=None,
        min_length=1,
        max_length=LIST_MAX,
        description="ia3: which of targetModules are feed-forward layers (scaled on their input). Default per architecture.",
    )
    quantization: QuantizationSpec | None = Field(
        default=None, description="qlora: how the base weights are quantized."
    )
    layers: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description=f"partial: number of top transformer blocks to train (plus the head). Default {defaults.PARTIAL_LAYERS}.",
    )
    decay: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description=f"layerwise-lr: each block's learning rate is this times the one above it. Default {defaults.LAYERWISE_DECAY}.",
    )
    virtual_tokens: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description=f"prompt-tuning/prefix-tuning: number of virtual tokens. Default {defaults.VIRTUAL_TOKENS}.",
    )
    init_text: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="prompt-tuning: initialise the virtual tokens from this text's embeddings (else random).",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = tuple(
        applies_only_when(field, "type", tuple(str(t) for t in types), "spec.method")
        for field, types in METHOD_FIELDS.items()
    )
