"""The transformers training loop, configured from the resolved spec: arguments, optimizer, collators, Trainer."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from finetune_api.measurements import metric_key
from finetune_api.resolved import Epochs, ResolvedSpec, Steps
from finetune_api.v1alpha1.enums import Metric, Optimizer, TaskType
from finetune_api.v1alpha1.job import FineTuneJobSpec

from ..evaluation.metrics import argmax_logits, classification_metrics
from .precision import PrecisionPlan

log = logging.getLogger(__name__)
SCHEDULERS = {
    "linear": "linear",
    "cosine": "cosine",
    "constant": "constant",
    "constant-with-warmup": "constant_with_warmup",
    "cosine-with-restarts": "cosine_with_restarts",
    "polynomial": "polynomial",
}


def plan_total_steps(spec: ResolvedSpec, n_train: int, world_size: int) -> int:
    t = spec.training
    length = t.length
    if isinstance(length, Steps):
        return length.count
    batches = math.ceil(n_train / (t.batch_size * world_size))
    per_epoch = max(1, math.ceil(batches / t.gradient_accumulation_steps))
    return max(1, math.ceil(length.count * per_epoch))


def training_arguments(
    spec: ResolvedSpec, total_steps: int, precision: PrecisionPlan, metric: Metric, work: Path
) -> Any:
    from transformers import TrainingArguments

    key = metric_key(metric)
    t = spec.training
    eval_strategy = "steps" if t.eval_steps else ("epoch" if isinstance(t.length, Epochs) else "no")
    early = t.early_stopping is not None and eval_strategy != "no"
    return TrainingArguments(
        output_dir=str(work / "checkpoints"),
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size * 2,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate,
        max_steps=total_steps,
        lr_scheduler_type=SCHEDULERS[t.scheduler.value],
        warmup_steps=t.warmup(total_steps),
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        seed=t.seed,
        data_seed=t.seed,
        bf16=precision.bf16,
        fp16=precision.fp16,
        use_cpu=not precision.on_gpu,
        **_checkpointing_args(t.gradient_checkpointing),
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        logging_steps=t.logging_steps,
        eval_strategy=eval_strategy,
        eval_steps=t.eval_steps,
        save_strategy=eval_strategy if early else "steps",
        save_steps=t.eval_steps if early and t.eval_steps else spec.output.checkpoint_every,
        save_total_limit=spec.output.keep_checkpoints,
        load_best_model_at_end=early,
        metric_for_best_model=key.removeprefix("eval_") if early else None,
        greater_is_better=metric.higher_is_better if early else None,
        label_names=["labels"],
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=2 if precision.on_gpu else 0,
        dataloader_pin_memory=precision.on_gpu,
    )


def _checkpointing_args(enabled: bool) -> dict[str, Any]:
    """Activation (gradient) checkpointing, under the argument name this transformers version uses."""
    if not enabled:
        return {}
    from transformers import TrainingArguments

    name = (
        "activation_checkpointing"
        if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
        else "gradient_checkpointing"
    )
    return {name: True, f"{name}_kwargs": {"use_reentrant": False}}


def build_optimizer(groups: list[dict[str, Any]], spec: ResolvedSpec, on_gpu: bool) -> torch.optim.Optimizer:
    kind, lr = spec.training.optimizer, spec.training.learning_rate
    if kind == Optimizer.SGD:
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    if kind == Optimizer.ADAFACTOR:
        from transformers.optimization import Adafactor

        return Adafactor(  # type: ignore[no-untyped-call]
            groups, lr=lr, scale_parameter=False, relative_step=False, warmup_init=False
        )
    # Fused AdamW runs one kernel for all parameters on GPUs; foreach is the fast path on CPU.
    return torch.optim.AdamW(groups, lr=lr, fused=on_gpu, foreach=None if on_gpu else True)


@dataclass(frozen=True)
class Collators:
    train: Any
    eval: Any  # always padded: eval losses stay comparable whether or not training packs
    packed: bool


def padded_collator(tokenizer: Any, on_gpu: bool) -> Any:
    from ..data.collate import PadToLongest

    return PadToLongest(tokenizer.pad_token_id, pad_to_multiple_of=8 if on_gpu else None)


def choose_collators(spec: FineTuneJobSpec, tokenizer: Any, model: Any, on_gpu: bool) -> Collators:
    from ..data.collate import PackFlat, dense_attention, prepare_for_packing

    # Separate instances: each counts the tokens it collates, and train_padding_fraction is training's alone.
    padded = padded_collator(tokenizer, on_gpu)
    unpacked = Collators(padded_collator(tokenizer, on_gpu), padded, packed=False)
    if not spec.training.packing:
        return unpacked
    instead = "length-grouped padded batches" if spec.training.group_by_length else "padded batches"
    if not prepare_for_packing(model):
        log.warning("packing: %s cannot keep packed examples apart; training on %s", type(model).__name__, instead)
        return unpacked
    if (implementation := dense_attention(model)) is not None:
        log.warning(
            "packing: %s attention has no variable-length kernel, so a packed row would compute attention "
            "across all its examples and mask it away; training on %s, which computes less "
            "(flash attention packs padding-free)",
            implementation,
            instead,
        )
        return unpacked
    log.info("packing: each batch is one padding-free row; attention stays within each example")
    return Collators(PackFlat(), padded, packed=True)


def metric_functions(spec: FineTuneJobSpec) -> dict[str, Any]:
    """compute_metrics and preprocess_logits_for_metrics for the task (causal-lm needs only the loss)."""
    if spec.task.type == TaskType.SEQUENCE_CLASSIFICATION:
        return {"compute_metrics": classification_metrics, "preprocess_logits_for_metrics": argmax_logits}
    return {}


def trainer_class() -> type:
    from transformers import Trainer

    class EvalUnpackedTrainer(Trainer):
        """Evaluates with plain padded batches even when training packs, so eval losses stay comparable."""

        def __init__(self, *args: Any, eval_collator: Any = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.eval_collator = eval_collator

        def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
            train_collator, self.data_collator = self.data_collator, self.eval_collator or self.data_collator
            try:
                return super().evaluate(*args, **kwargs)
            finally:
                self.data_collator = train_collator

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            from ..data.grouping import train_order  # a fuller sort than transformers' own; see there

            dataset = train_dataset if train_dataset is not None else self.train_dataset
            if self.args.train_sampling_strategy == "group_by_length" and dataset is not None:
                return train_order(self.args, dataset)
            return super()._get_train_sampler(train_dataset)

    return EvalUnpackedTrainer
