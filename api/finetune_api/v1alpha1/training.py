"""spec.training: the optimisation loop's settings."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from . import defaults
from .base import CelRule, SpecModel
from .enums import Optimizer, Precision, Scheduler


class EarlyStoppingSpec(SpecModel):
    """Stop when the evaluation metric stops improving."""

    patience: int = Field(ge=1, le=1000, description="Evaluations without improvement before stopping.")
    threshold: float = Field(default=0.0, ge=0, description="The least change that counts as an improvement.")


class TrainingSpec(SpecModel):
    """The training loop. Give exactly one of epochs and maxSteps."""

    epochs: float | None = Field(
        default=None, gt=0, le=1000, description="Passes over the training data (fractions allowed)."
    )
    max_steps: int | None = Field(
        default=None, ge=1, le=10_000_000, description="Optimizer steps to run, instead of epochs."
    )
    learning_rate: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description=f"Peak learning rate. Default per method: {defaults.learning_rates_text()}.",
    )
    batch_size: int = Field(
        default=8, ge=1, le=4096, description="Examples per device per step (before gradient accumulation)."
    )
    gradient_accumulation_steps: int = Field(
        default=1, ge=1, le=1024, description="Micro-batches summed per optimizer step."
    )
    scheduler: Scheduler = Field(default=Scheduler.LINEAR, description="Learning-rate schedule after warmup.")
    warmup_ratio: float | None = Field(
        default=None,
        ge=0,
        le=0.5,
        description=f"Fraction of steps spent warming up. Default {defaults.WARMUP_RATIO:g}. Not with warmupSteps.",
    )
    warmup_steps: int | None = Field(
        default=None, ge=0, le=1_000_000, description="Warmup steps. Not with warmupRatio."
    )
    weight_decay: float = Field(
        default=0.0, ge=0, le=1, description="Decoupled weight decay (AdamW), not applied to biases and norms."
    )
    max_grad_norm: float = Field(default=1.0, gt=0, le=1000, description="Clip gradients to this global norm.")
    optimizer: Optimizer = Field(default=Optimizer.ADAMW, description="adamw (fused on GPUs), sgd or adafactor.")
    precision: Precision = Field(
        default=Precision.AUTO,
        description="auto: bf16 on GPUs that support it, else fp16 on GPUs, fp32 on CPU. fp16 needs a GPU.",
    )
    gradient_checkpointing: bool = Field(
        default=False, description="Recompute activations in the backward pass: less memory, ~30% more compute."
    )
    packing: bool = Field(
        default=False,
        description=(
            "causal-lm only: each batch becomes one padding-free sequence, attention kept within each "
            "example. Used where the model runs flash attention (variable-length kernels); with SDPA or "
            "eager attention a packed row costs more than it saves, so training uses length-grouped "
            "batches instead and reports packed: false."
        ),
    )
    group_by_length: bool = Field(
        default=True,
        description=(
            "Batch examples of similar length together, so less padding is computed. For classification "
            "the rows are sorted within each label, so every batch keeps the label mix even where length "
            "tells the labels apart."
        ),
    )
    seed: int = Field(
        default=42, ge=0, le=2**31 - 1, description="Seed for data order, splits, sampling and initialisation."
    )
    eval_steps: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Evaluate every N steps. Default: at the end of each epoch (and of training).",
    )
    logging_steps: int = Field(default=10, ge=1, le=100_000, description="Log loss and learning rate every N steps.")
    early_stopping: EarlyStoppingSpec | None = Field(
        default=None, description="Stop early when the metric stops improving."
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="has(self.epochs) != has(self.maxSteps)",
            message="set exactly one of spec.training.epochs or spec.training.maxSteps",
            field="maxSteps",
        ),
        CelRule(
            rule="!(has(self.warmupRatio) && has(self.warmupSteps))",
            message="set spec.training.warmupRatio or spec.training.warmupSteps, not both",
            field="warmupSteps",
        ),
    )
