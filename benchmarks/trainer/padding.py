"""Padding fractions without timing anything: the batches each variant's sampler and collator build.

    python -m benchmarks.trainer.padding [--steps 30]

For the benchmark's tweets and SFT rows, each order is drawn from a real Trainer's train DataLoader (the
plain Trainer's random sampler, transformers' LengthGroupedSampler, and this trainer's runner class)
and the pad tokens its collator adds are counted. Deterministic: same rows, same seed, same figures.
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

from .harness import pin_checkout

pin_checkout()  # before this checkout's packages are imported, here and below

from finetune_trainer.data.collate import PackFlat, PadToLongest, TokenCount  # noqa: E402


def _count(  # noqa: PLR0913 - the measured configuration: loop, rows, collator, strategy, steps, batch
    trainer_class: Any, examples: list[dict[str, Any]], collator: Any, strategy: str, steps: int, batch: int = 32
) -> str:
    import torch
    from transformers import TrainingArguments, set_seed

    from .harness import SEED
    from .plain import CountingCollator

    set_seed(SEED)
    # This trainer's collators count themselves (packed rows have no attention mask to count from).
    counting = collator if isinstance(collator, TokenCount) else CountingCollator(collator)
    # Nothing is written; the temporary folder keeps the Trainer from making one in the cwd.
    with tempfile.TemporaryDirectory(prefix="padding-count-") as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=batch, max_steps=steps, use_cpu=True, report_to="none",
            seed=SEED, data_seed=SEED, train_sampling_strategy=strategy, remove_unused_columns=False,
        )  # fmt: skip
        model = torch.nn.Linear(1, 1)
        trainer = trainer_class(model=model, args=args, train_dataset=examples, data_collator=counting)
        # Attention scores computed: rows x length^2 per batch. A packed row under a dense (SDPA/eager)
        # mask computes all of its length^2, masked or not.
        shapes = [loaded["input_ids"].shape for loaded in trainer.get_train_dataloader()]
    scores = sum(rows * length * length for rows, length in shapes)
    fraction = counting.padding_fraction or 0.0
    return (
        f"{fraction:.1%} padding, {counting.computed_tokens} token positions for {counting.real_tokens} tokens, "
        f"{scores / 1e6:.1f}M attention scores per head and layer"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trainer.padding", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[30, 10], help="tweets: steps of 32 rows")
    parser.add_argument("--sft-steps", type=int, default=6, help="SFT: steps of 8 rows (quick: 6)")
    args = parser.parse_args()
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer

    from finetune_trainer.training.loop import trainer_class
    from tests.support import assets

    from .classification import _rows

    tokenizer = AutoTokenizer.from_pretrained(assets.minilm())
    for steps in args.steps:
        texts, *_ = _rows("tweets", steps, 1)
        enc = tokenizer(texts, truncation=True)
        padded = enc["input_ids"]
        examples = [{"input_ids": i, "attention_mask": [1] * len(i), "labels": 0} for i in padded]
        print(f"tweets, {steps} steps x 32 rows ({len(padded)} rows, {sum(map(len, padded))} tokens):")
        print("  (a) pad to 512:", f"{1 - sum(map(len, padded)) / (512 * len(padded)):.1%} padding")
        print("  (b) random batches:", _count(Trainer, examples, DataCollatorWithPadding(tokenizer), "random", steps))
        pad_id = tokenizer.pad_token_id
        grouped = "group_by_length"
        print(
            "  (c) before, transformers' LengthGroupedSampler:",
            _count(Trainer, examples, PadToLongest(pad_id), grouped, steps),
        )
        print(
            "  (c) now, this trainer's order:", _count(trainer_class(), examples, PadToLongest(pad_id), grouped, steps)
        )
    _sft(args.sft_steps)


def _sft(steps: int) -> None:
    from pathlib import Path

    from transformers import DataCollatorForSeq2Seq, Trainer

    from finetune_trainer.training.loop import trainer_class

    from . import sft

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer, train, _ = sft._prepared(steps, 24, Path(tmp))
    rows = list(train.examples)
    print(f"sft, {steps} steps x {sft.BATCH} rows ({len(rows)} rows, {train.tokens} tokens):")
    print(f"  (a) pad to {sft.MAX_LENGTH}: {1 - train.tokens / (sft.MAX_LENGTH * len(rows)):.1%} padding")
    seq2seq = DataCollatorForSeq2Seq(tokenizer, padding="longest")
    print("  (b) random batches:", _count(Trainer, rows, seq2seq, "random", steps, sft.BATCH))
    pad_id = tokenizer.pad_token_id
    print(
        "  (c) packed, one row per batch:",
        _count(trainer_class(), rows, PackFlat(), "group_by_length", steps, sft.BATCH),
    )
    print(
        "  (c) length-grouped (what packing: true trains under SDPA):",
        _count(trainer_class(), rows, PadToLongest(pad_id), "group_by_length", steps, sft.BATCH),
    )


if __name__ == "__main__":
    main()
