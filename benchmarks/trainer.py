"""Trainer throughput on CPU: the tutorial recipe (a), a tuned plain HF Trainer (b), and this trainer (c).

    python -m benchmarks.trainer --quick

Same model (the shipped all-MiniLM-L6-v2), data (the shipped tweets), method (full fine-tuning),
batch size, learning rate, number of steps and precision; each variant runs in its own process so
peak memory is its own. The last line printed is a JSON object with the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BATCH = 32
LR = 5e-5
EVAL_ROWS = 600
SEED = 42


def _rows(steps: int) -> tuple[list[str], list[str], list[str], list[str]]:
    import pandas as pd

    from finetune_trainer import assets

    tweets = assets.tweets()
    train = pd.read_csv(tweets / "train.csv", keep_default_na=False).sample(n=steps * BATCH, random_state=SEED)
    evaluation = pd.read_csv(tweets / "eval.csv", keep_default_na=False).sample(n=EVAL_ROWS, random_state=SEED)
    return list(train["text"]), list(train["sentiment"]), list(evaluation["text"]), list(evaluation["sentiment"])


def _plain_trainer(variant: str, steps: int) -> dict[str, Any]:
    """(a) padding="max_length" as in the classic tutorial; (b) the same with dynamic padding."""
    import numpy as np
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from finetune_trainer import assets

    set_seed(SEED)
    torch.set_num_threads(torch.get_num_threads())
    texts, labels, eval_texts, eval_labels = _rows(steps)
    names = sorted(set(labels))
    ids = {n: i for i, n in enumerate(names)}
    tok = AutoTokenizer.from_pretrained(assets.minilm())
    pad = {"padding": "max_length", "max_length": tok.model_max_length} if variant == "a" else {}

    def encode(xs: list[str], ys: list[str]) -> list[dict[str, Any]]:
        enc = tok(xs, truncation=True, **pad)
        return [
            {"input_ids": i, "attention_mask": m, "labels": ids[y]}
            for i, m, y in zip(enc["input_ids"], enc["attention_mask"], ys, strict=True)
        ]

    train, evaluation = encode(texts, labels), encode(eval_texts, eval_labels)
    real_tokens = sum(sum(e["attention_mask"]) for e in train)
    model = AutoModelForSequenceClassification.from_pretrained(assets.minilm(), num_labels=len(names))
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=BATCH, per_device_eval_batch_size=64, learning_rate=LR,
            max_steps=steps, use_cpu=True, report_to="none", save_strategy="no", eval_strategy="no", seed=SEED,
            disable_tqdm=True, logging_steps=10_000,
        )  # fmt: skip
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train,
            data_collator=None if variant == "a" else DataCollatorWithPadding(tok),
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        preds = trainer.predict(evaluation)  # type: ignore[arg-type]  # a list of dicts is a map-style dataset
    accuracy = float((np.argmax(preds.predictions, axis=-1) == preds.label_ids).mean())
    return {"seconds": seconds, "samples": steps * BATCH, "real_tokens": real_tokens, "accuracy": accuracy}


def _this_trainer(steps: int) -> dict[str, Any]:
    import pandas as pd

    from finetune_api.spec.job import FineTuneJob
    from finetune_trainer import assets
    from finetune_trainer.main import RunOptions, execute

    texts, labels, eval_texts, eval_labels = _rows(steps)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pd.DataFrame({"text": texts, "sentiment": labels}).to_csv(root / "train.csv", index=False)
        pd.DataFrame({"text": eval_texts, "sentiment": eval_labels}).to_csv(root / "eval.csv", index=False)
        job = FineTuneJob.model_validate(
            {
                "apiVersion": "finetune.dev/v1alpha1",
                "kind": "FineTuneJob",
                "metadata": {"name": "bench"},
                "spec": {
                    "model": {"uri": str(assets.minilm()) + "/"},
                    "task": {"type": "sequence-classification", "labelColumn": "sentiment"},
                    "dataset": {
                        "train": str(root / "train.csv"),
                        "eval": str(root / "eval.csv"),
                        "deduplicate": False,
                        "allowOverlap": True,
                    },
                    "method": {"type": "full"},
                    "training": {
                        "maxSteps": steps,
                        "batchSize": BATCH,
                        "learningRate": LR,
                        "seed": SEED,
                        "loggingSteps": 10_000,
                    },
                    "evaluation": {"baseline": False},
                    "output": {"uri": str(root / "out") + "/", "checkpointEvery": 10_000_000},
                },
            }
        )
        code, result = execute(
            job, RunOptions(work_dir=root / "work", progress_bar=False, termination_log=str(root / "t"))
        )
        if code != 0 or result is None:
            raise SystemExit(f"this trainer failed with exit code {code}")
    from transformers import AutoTokenizer

    real_tokens = sum(
        len(ids) for ids in AutoTokenizer.from_pretrained(assets.minilm())(texts, truncation=True)["input_ids"]
    )
    return {
        "seconds": result.metrics["train_runtime_s"],
        "samples": steps * BATCH,
        "real_tokens": real_tokens,
        "accuracy": result.metrics["tuned"]["eval_accuracy"],
    }


def _one(variant: str, steps: int) -> None:
    stats = _this_trainer(steps) if variant == "c" else _plain_trainer(variant, steps)
    stats["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(stats))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trainer")
    parser.add_argument("--quick", action="store_true", help="20 steps per variant (a few minutes on 2 cores)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--variant", choices=["a", "b", "c"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    steps = args.steps or (20 if args.quick else 100)
    if args.variant:
        _one(args.variant, steps)
        return 0
    results = {}
    for variant, label in (
        ("a", "tutorial recipe (pad to max_length, plain Trainer)"),
        ("b", "tuned plain Trainer (dynamic padding)"),
        ("c", "this trainer"),
    ):
        out = subprocess.run(  # noqa: S603 - our own module, fixed argv
            [sys.executable, "-m", "benchmarks.trainer", "--variant", variant, "--steps", str(steps)],
            capture_output=True,
            text=True,
            check=True,
        )
        stats = json.loads(out.stdout.strip().splitlines()[-1])
        stats["samples_per_s"] = stats["samples"] / stats["seconds"]
        stats["tokens_per_s"] = stats["real_tokens"] / stats["seconds"]
        results[variant] = stats
        print(
            f"({variant}) {label}: {stats['samples_per_s']:.1f} samples/s, "
            f"{stats['tokens_per_s']:.0f} non-pad tokens/s, peak RSS {stats['peak_rss_mib']:.0f} MiB, "
            f"accuracy {stats['accuracy']:.3f}"
        )
    summary = {
        "model": "all-MiniLM-L6-v2", "task": "tweets 3-class", "method": "full", "steps": steps, "batch_size": BATCH,
        "samples_per_s": {k: round(v["samples_per_s"], 2) for k, v in results.items()},
        "c_over_a": round(results["c"]["samples_per_s"] / results["a"]["samples_per_s"], 2),
        "c_over_b": round(results["c"]["samples_per_s"] / results["b"]["samples_per_s"], 2),
        **{f"accuracy_{k}": round(v["accuracy"], 4) for k, v in results.items()},
    }  # fmt: skip
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
