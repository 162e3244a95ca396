"""Causal-LM SFT: LoRA on the shipped SmolLM2-135M-Instruct, Alpaca demo (prompt-completion).

All three variants train on the very same token sequences (this trainer's tokenization, loss on the
completion only), so they differ only in how batches are built and run:
(a) the tutorial recipe: every example padded to max_length (512) at tokenization, plain Trainer;
(b) a tuned plain Trainer: DataCollatorForSeq2Seq pads each batch to its longest row;
(c) this trainer with `packing: true`: one padding-free row per batch under flash attention; under SDPA
    (always on CPU) it trains length-grouped padded batches instead, which compute less there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .harness import SEED, Stats

BATCH = 8
LR = 2e-4
MAX_LENGTH = 512
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def _spec(steps: int, eval_rows: int, seed: int = SEED) -> dict[str, Any]:
    from tests.support import assets

    return {
        "model": {"uri": f"{assets.smollm2()}/"},
        "task": {"type": "causal-lm", "format": "prompt-completion", "promptColumn": "instruction",
                 "inputColumn": "input", "completionColumn": "output"},
        "dataset": {"train": str(assets.alpaca() / "alpaca_en_demo.json"), "evalSplit": 0.1,
                    "maxSamples": steps * BATCH, "maxEvalSamples": eval_rows, "maxLength": MAX_LENGTH},
        "method": {"type": "lora", "r": 16, "alpha": 32, "dropout": 0.05, "targetModules": TARGETS},
        "training": {"maxSteps": steps, "batchSize": BATCH, "learningRate": LR, "seed": seed, "packing": True,
                     "loggingSteps": 10_000},
        "evaluation": {"baseline": False},
    }  # fmt: skip


def _prepared(steps: int, eval_rows: int, work: Path, seed: int = SEED) -> tuple[Any, Any, Any]:
    """This trainer's own rows and tokenization, for the plain variants to train on."""
    from finetune_api.resolve import resolve_job
    from finetune_api.v1alpha1.job import FineTuneJob
    from finetune_trainer.training.data_plan import load_records, tokenize
    from finetune_trainer.training.model_loading import load_tokenizer, model_facts
    from tests.support import assets

    job = FineTuneJob.model_validate(
        {"apiVersion": "finetune.dev/v1alpha1", "kind": "FineTuneJob", "metadata": {"name": "bench"},
         "spec": {**_spec(steps, eval_rows, seed), "output": {"uri": f"{work / 'out'}/"}}}
    )  # fmt: skip
    tokenizer = load_tokenizer(str(assets.smollm2()), job.spec)
    job = resolve_job(job, model_facts(str(assets.smollm2()), job.spec, tokenizer))
    data = load_records(job.spec, work)
    tokenize(data, job.spec, tokenizer)
    return tokenizer, data.train, data.eval


def plain(variant: str, steps: int, eval_rows: int, work: Path, seed: int = SEED) -> Stats:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, set_seed

    from tests.support import assets

    from .plain import PlainRun

    set_seed(seed)
    tokenizer, train, evaluation = _prepared(steps, eval_rows, work, seed)
    real_tokens = train.tokens

    def to_max_length(example: dict[str, Any]) -> dict[str, Any]:
        pad = MAX_LENGTH - len(example["input_ids"])
        return {
            "input_ids": example["input_ids"] + [tokenizer.pad_token_id] * pad,
            "attention_mask": [1] * len(example["input_ids"]) + [0] * pad,
            "labels": example["labels"] + [-100] * pad,
        }

    rows, eval_rows_ = list(train.examples), list(evaluation.examples)
    if variant == "a":
        rows, eval_rows_ = [to_max_length(e) for e in rows], [to_max_length(e) for e in eval_rows_]
    collator = None if variant == "a" else DataCollatorForSeq2Seq(tokenizer, padding="longest")
    model = AutoModelForCausalLM.from_pretrained(assets.smollm2())
    config = LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, lora_dropout=0.05, target_modules=TARGETS)
    run = PlainRun(
        model=get_peft_model(model, config),
        train=rows,
        evaluation=eval_rows_,
        collator=collator,
        steps=steps,
        batch=BATCH,
        learning_rate=LR,
        seed=seed,
    )
    seconds, predictions = run.train_and_predict()
    loss = float(predictions.metrics["test_loss"])
    return Stats(seconds, steps * BATCH, real_tokens, {"eval_loss": loss}, padding=run.padding)


def ours(steps: int, eval_rows: int, work: Path, seed: int = SEED) -> Stats:
    from .ours import run_job

    _, train, _ = _prepared(steps, eval_rows, work / "count", seed)
    metrics = run_job(_spec(steps, eval_rows, seed))
    return Stats(
        (metrics.cost.train_seconds or 0.0),
        steps * BATCH,
        train.tokens,
        {"eval_loss": metrics.tuned["eval_loss"]},
        extra={"packed": metrics.cost.packed},
        padding=metrics.cost.padding_fraction,
    )
