"""The baselines: a plain Hugging Face Trainer, set up the way its users set it up."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from transformers import default_data_collator

from finetune_trainer.data.collate import TokenCount


@dataclass
class CountingCollator(TokenCount):
    """Wraps a baseline's collator to count the token positions it hands the model, pad or not.

    The plain runs keep transformers' default of no DataLoader workers, so the count is complete.
    """

    inner: Callable[[list[dict[str, Any]]], Any] = default_data_collator

    def __call__(self, batch: list[dict[str, Any]]) -> Any:
        out = self.inner(batch)
        mask = out["attention_mask"]
        self.count(int(mask.sum()), mask.numel())
        return out


@dataclass
class PlainRun:
    """One plain-Trainer training run over exactly `steps` batches of `batch` examples."""

    model: Any
    train: Sequence[dict[str, Any]]
    evaluation: Sequence[dict[str, Any]]
    collator: Callable[[list[dict[str, Any]]], Any] | None
    steps: int
    batch: int
    learning_rate: float
    seed: int
    bf16: bool = False
    optim: str = "adamw_torch"

    padding: float | None = None  # set by train_and_predict

    def train_and_predict(self) -> tuple[float, Any]:
        """Seconds spent in trainer.train(), and the predictions on the eval set."""
        import torch
        from transformers import Trainer, TrainingArguments, default_data_collator

        with tempfile.TemporaryDirectory() as out:
            args = TrainingArguments(
                output_dir=out, per_device_train_batch_size=self.batch, per_device_eval_batch_size=self.batch * 2,
                learning_rate=self.learning_rate, max_steps=self.steps, use_cpu=not torch.cuda.is_available(),
                bf16=self.bf16, optim=self.optim, report_to="none", save_strategy="no", eval_strategy="no",
                seed=self.seed, disable_tqdm=True, logging_steps=10_000, label_names=["labels"],
                remove_unused_columns=False,
            )  # fmt: skip
            counting = CountingCollator(self.collator or default_data_collator)
            trainer = Trainer(model=self.model, args=args, train_dataset=self.train, data_collator=counting)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            trainer.train()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            self.padding = counting.padding_fraction
            trainer.data_collator = self.collator or default_data_collator  # predictions are not counted
            predictions = trainer.predict(self.evaluation)  # type: ignore[arg-type]
        return seconds, predictions
