"""Sequence classification: full fine-tuning of the shipped all-MiniLM-L6-v2 on the shipped tweets.

(a) the tutorial recipe: tokenize with padding="max_length" (512 tokens), plain Trainer;
(b) a tuned plain Trainer: dynamic padding (pad each batch to its longest row), same precision;
(c) this trainer: the same spec a user would write. Same rows, batch size, steps and learning rate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .harness import Stats

BATCH = 32
LR = 5e-5
SEED = 42


def _rows(steps: int, eval_rows: int) -> tuple[list[str], list[str], list[str], list[str]]:
    import pandas as pd

    from tests.support import assets

    tweets = assets.tweets()
    train = pd.read_csv(tweets / "train.csv", keep_default_na=False).sample(n=steps * BATCH, random_state=SEED)
    evaluation = pd.read_csv(tweets / "eval.csv", keep_default_na=False).sample(n=eval_rows, random_state=SEED)
    return list(train["text"]), list(train["sentiment"]), list(evaluation["text"]), list(evaluation["sentiment"])


def _real_tokens(texts: list[str]) -> int:
    from transformers import AutoTokenizer

    from tests.support import assets

    tokenizer = AutoTokenizer.from_pretrained(assets.minilm())
    return sum(len(ids) for ids in tokenizer(texts, truncation=True)["input_ids"])


def plain(variant: str, steps: int, eval_rows: int) -> Stats:
    import numpy as np
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, set_seed

    from tests.support import assets

    from .plain import PlainRun

    set_seed(SEED)
    texts, labels, eval_texts, eval_labels = _rows(steps, eval_rows)
    names = sorted(set(labels))
    ids = {n: i for i, n in enumerate(names)}
    tokenizer = AutoTokenizer.from_pretrained(assets.minilm())
    padding = {"padding": "max_length", "max_length": tokenizer.model_max_length} if variant == "a" else {}

    def encode(xs: list[str], ys: list[str]) -> list[dict[str, Any]]:
        enc = tokenizer(xs, truncation=True, **padding)
        return [
            {"input_ids": i, "attention_mask": m, "labels": ids[y]}
            for i, m, y in zip(enc["input_ids"], enc["attention_mask"], ys, strict=True)
        ]

    collator = None if variant == "a" else DataCollatorWithPadding(tokenizer)
    run = PlainRun(
        model=AutoModelForSequenceClassification.from_pretrained(assets.minilm(), num_labels=len(names)),
        train=encode(texts, labels),
        evaluation=encode(eval_texts, eval_labels),
        collator=collator,
        steps=steps,
        batch=BATCH,
        learning_rate=LR,
        seed=SEED,
    )
    seconds, predictions = run.train_and_predict()
    accuracy = float((np.argmax(predictions.predictions, axis=-1) == predictions.label_ids).mean())
    return Stats(seconds, steps * BATCH, _real_tokens(texts), {"accuracy": accuracy}, padding=run.padding)


def ours(steps: int, eval_rows: int, tmp: Path) -> Stats:
    import pandas as pd

    from tests.support import assets

    from .ours import run_job

    texts, labels, eval_texts, eval_labels = _rows(steps, eval_rows)
    pd.DataFrame({"text": texts, "sentiment": labels}).to_csv(tmp / "train.csv", index=False)
    pd.DataFrame({"text": eval_texts, "sentiment": eval_labels}).to_csv(tmp / "eval.csv", index=False)
    metrics = run_job(
        {
            "model": {"uri": f"{assets.minilm()}/"},
            "task": {"type": "sequence-classification", "labelColumn": "sentiment"},
            # The rows are already a seeded sample; hygiene must not drop any, or (c) trains on fewer.
            "dataset": {"train": str(tmp / "train.csv"), "eval": str(tmp / "eval.csv"), "deduplicate": False,
                        "allowOverlap": True},
            "method": {"type": "full"},
            "training": {"maxSteps": steps, "batchSize": BATCH, "learningRate": LR, "seed": SEED,
                         "loggingSteps": 10_000},
            "evaluation": {"baseline": False},
        }
    )  # fmt: skip
    return Stats(
        metrics["train_runtime_s"],
        steps * BATCH,
        _real_tokens(texts),
        {"accuracy": metrics["tuned"]["eval_accuracy"]},
        padding=metrics["train_padding_fraction"],
    )
