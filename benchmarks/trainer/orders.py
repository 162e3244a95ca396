"""Batch orders against random batches: padding, speed and accuracy side by side, on several datasets.

    python -m benchmarks.trainer.orders                       # every plan, every dataset, 3 seeds
    python -m benchmarks.trainer.orders --datasets tilted --plans random sorted-50 stratified --seeds 3
    python -m benchmarks.trainer.orders --padding              # padding of every plan, counted, no training

The job is issue 19's: all-MiniLM-L6-v2 with LoRA r 16 / alpha 32, 2 epochs of 800 rows, learning rate
1e-3, batches of 16, rows cut at 128 tokens (tests.integration.trainer.jobs.order_study_spec), run
through this trainer's own entry point. Each (seed, dataset, plan) runs in its own process,
interleaved, so load drift on a shared machine hits every plan alike. A plan whose median accuracy,
or whose worst seed, falls more than 1 point below random batches' (median, worst seed), beyond half
random batches' seed range, is marked REGRESSION (repeats.quality_verdict). The last line printed
is the JSON of every figure.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .classification import DATASETS, data_folder
from .harness import CHECKOUT, pin_checkout
from .repeats import quality_verdict

pin_checkout()

from finetune_trainer.data.grouping import DEFAULT_PLAN, GroupingPlan  # noqa: E402

# None: random batches (groupByLength: false). The rest: length-grouped orders to compare.
PLANS: dict[str, GroupingPlan | None] = {
    "random": None,
    "default": DEFAULT_PLAN,
    "sorted-50": GroupingPlan(max_megabatch=50, stratify=False),  # the order before issue 19
    "small-groups": GroupingPlan(max_megabatch=50, min_megabatches=8, stratify=False),
    "noisy-sort": GroupingPlan(max_megabatch=50, noise=0.3, stratify=False),
    "stratified": GroupingPlan(max_megabatch=50, stratify=True),
    "stratified-small": GroupingPlan(max_megabatch=50, min_megabatches=8, stratify=True),
}
ROWS, EPOCHS, BATCH = 800, 2, 16  # as in tests.integration.trainer.jobs.order_study_spec


@dataclass
class Run:
    accuracy: float
    padding: float
    samples_per_s: float


def job_spec(dataset: str, seed: int, grouped: bool, rows: int = ROWS) -> dict[str, Any]:
    from tests.integration.trainer.jobs import order_study_spec

    return order_study_spec(*data_folder(dataset), seed=seed, grouped=grouped, rows=rows)


def _one(dataset: str, plan: str, seed: int, rows: int) -> Run:
    from finetune_trainer.data import grouping

    from .ours import run_job

    chosen = PLANS[plan]
    if chosen is not None:
        grouping.DEFAULT_PLAN = chosen  # the order train_order builds in this process
    metrics = run_job(job_spec(dataset, seed, grouped=chosen is not None, rows=rows))
    return Run(
        accuracy=metrics.tuned["eval_accuracy"],
        padding=metrics.cost.padding_fraction or 0.0,
        samples_per_s=rows * EPOCHS / (metrics.cost.train_seconds or 0.0),
    )


def _spawn(dataset: str, plan: str, seed: int, rows: int) -> Run:
    out = subprocess.run(  # noqa: S603 - our own module, fixed argv
        [sys.executable, "-m", "benchmarks.trainer.orders", "--one", dataset, plan, str(seed), "--rows", str(rows)],
        capture_output=True, text=True, check=False, env=pin_checkout(), cwd=CHECKOUT,
    )  # fmt: skip
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"{dataset} {plan} seed {seed} failed with exit code {out.returncode}")
    return Run(**json.loads(out.stdout.strip().splitlines()[-1]))


def summarise(runs: dict[str, list[Run]]) -> dict[str, dict[str, Any]]:
    """Per plan: medians, [min, max] and the verdict against random batches (the benchmark's rule)."""

    def med(plan: str, field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in runs[plan]))

    random_accuracies = [r.accuracy for r in runs["random"]]
    table: dict[str, dict[str, Any]] = {}
    for plan, plan_runs in runs.items():
        accuracies = [r.accuracy for r in plan_runs]
        verdict = quality_verdict("accuracy", random_accuracies, accuracies)
        table[plan] = {
            "accuracy": round(med(plan, "accuracy"), 4),
            "accuracy_spread": [round(min(accuracies), 4), round(max(accuracies), 4)],
            "accuracy_vs_random": round(-verdict.worse_by, 4),
            "allowed": verdict.allowed,
            "padding": round(med(plan, "padding"), 4),
            "samples_per_s": round(med(plan, "samples_per_s"), 1),
            "speed_vs_random": round(med(plan, "samples_per_s") / med("random", "samples_per_s"), 2),
            "verdict": "REGRESSION" if verdict.regression else "ok",
        }
    return table


def count_padding(datasets: list[str], plans: list[str], rows: int, seeds: int) -> dict[str, dict[str, float]]:
    """Each plan's padding on the study's rows (its first `rows` training rows, as tokenized), no training."""
    import pandas as pd
    from transformers import AutoTokenizer

    from finetune_trainer.data.grouping import grouped_batches, padding_fraction
    from tests.integration.trainer.jobs import order_study_spec
    from tests.support import assets

    tokenizer = AutoTokenizer.from_pretrained(assets.minilm())
    max_length = order_study_spec(Path(), "label", seed=1, grouped=True)["dataset"]["maxLength"]
    table: dict[str, dict[str, float]] = {}
    for dataset in datasets:
        folder, label = data_folder(dataset)
        train = pd.read_csv(folder / "train.csv", keep_default_na=False).head(rows)
        lengths = [
            len(ids) for ids in tokenizer(list(train["text"]), truncation=True, max_length=max_length)["input_ids"]
        ]
        names = {name: i for i, name in enumerate(sorted(set(train[label])))}
        labels = [names[y] for y in train[label]]
        table[dataset] = {}
        for plan in plans:
            chosen = PLANS[plan]
            fractions = []
            for seed in range(1, seeds + 1):
                if chosen is None:
                    order = list(range(len(lengths)))
                    random.Random(seed).shuffle(order)  # noqa: S311 - data order
                    batches = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
                else:
                    batches = grouped_batches(lengths, BATCH, seed, labels=labels, plan=chosen)
                fractions.append(padding_fraction(lengths, batches))
            table[dataset][plan] = round(statistics.median(fractions), 4)
        print(f"{dataset:10} " + ", ".join(f"{p} {f:.1%}" for p, f in table[dataset].items()), flush=True)
    return table


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trainer.orders", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets", nargs="+", default=["tilted", "tweets", "polarity", "reviews-nl"], choices=DATASETS
    )
    parser.add_argument("--plans", nargs="+", default=list(PLANS), choices=list(PLANS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--padding", action="store_true", help="count each plan's padding; train nothing")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.padding:
        print(json.dumps(count_padding(args.datasets, args.plans, args.rows, args.seeds)))
        return 0
    if args.one:
        dataset, plan, seed = args.one
        print(json.dumps(asdict(_one(dataset, plan, int(seed), args.rows))), flush=True)
        return 0
    plans = args.plans if "random" in args.plans else ["random", *args.plans]
    runs: dict[str, dict[str, list[Run]]] = {d: {p: [] for p in plans} for d in args.datasets}
    for seed in range(1, args.seeds + 1):
        for dataset in args.datasets:
            for plan in plans:
                run = _spawn(dataset, plan, seed, args.rows)
                runs[dataset][plan].append(run)
                print(f"  seed {seed} {dataset:10} {plan:16} accuracy {run.accuracy:.3f}, "
                      f"{run.padding:.1%} padding, {run.samples_per_s:.1f} samples/s", flush=True)  # fmt: skip
    summary = {d: summarise(r) for d, r in runs.items()}
    for dataset, table in summary.items():
        print(f"{dataset}: medians over {args.seeds} seeds; accuracy [min, max], against random batches")
        for plan, row in table.items():
            low, high = row["accuracy_spread"]
            print(f"  {plan:16} accuracy {row['accuracy']:.3f} [{low:.3f}, {high:.3f}] "
                  f"({row['accuracy_vs_random'] * 100:+.1f} points), {row['padding']:.1%} padding, "
                  f"{row['samples_per_s']:.1f} samples/s ({row['speed_vs_random']:.2f}x) {row['verdict']}")  # fmt: skip
    print(json.dumps({"rows": args.rows, "seeds": args.seeds, "datasets": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
