"""Issue 19's quality floor: the default batch order trains as well as random batches where length tells
the labels apart (bol.com product reviews, subsampled so that long reviews are mostly complaints).

A sort by length alone also sorts such rows by label, and batches of nearly one label cost this very
job 14 points of accuracy. The default order must stay within MARGIN of random batches, whatever it
saves in padding; benchmarks/trainer/orders.py gives the medians over seeds behind the margin.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest

from finetune_api.v1alpha1.job import FineTuneJob
from finetune_trainer.main import RunOptions, execute
from tests.integration.trainer.jobs import order_study_spec

pytestmark = pytest.mark.training

MARGIN = 0.02  # accuracy: one seed's noise on 500 eval rows is about a point (see BENCHMARKS.md)


def _accuracy(spec: dict[str, Any], work: Path) -> tuple[float, float]:
    spec = {**spec, "output": {"uri": f"{work / 'out'}/"}}
    job = FineTuneJob.model_validate(
        {"apiVersion": "finetune.dev/v1alpha1", "kind": "FineTuneJob", "metadata": {"name": "order"}, "spec": spec}
    )
    log = work / "termination-log"
    code, result = execute(job, RunOptions(work_dir=work / "work", progress_bar=False, termination_log=str(log)))
    assert code == 0 and result is not None, log.read_text() if log.exists() else code
    return result.measured.tuned["eval_accuracy"], result.measured.cost.padding_fraction


def _one_label_share(batches: list[list[int]], labels: list[int]) -> float:
    """The share of batches in which one label holds 15 of 16 rows or more."""
    return sum(max(sum(labels[i] for i in b), len(b) - sum(labels[i] for i in b)) >= 15 for b in batches) / len(batches)


def test_the_default_order_mixes_labels_where_a_length_sort_would_not() -> None:
    """The cause, on the real rows: a plain length sort gives batches of one label here; the default does not."""
    import pandas as pd
    from transformers import AutoTokenizer

    from finetune_trainer.data.grouping import GroupingPlan, grouped_batches
    from tests.support import assets

    spec = order_study_spec(assets.length_tilted(), "label", seed=1, grouped=None)  # the rows the job trains on
    batch, cut = spec["training"]["batchSize"], spec["dataset"]["maxLength"]
    train = pd.read_csv(assets.length_tilted() / "train.csv").head(spec["dataset"]["maxSamples"])
    tokenizer = AutoTokenizer.from_pretrained(assets.minilm())
    lengths = [len(ids) for ids in tokenizer(list(train["text"]), truncation=True, max_length=cut)["input_ids"]]
    labels = list((train["label"] == "negative").astype(int))
    assert statistics.correlation(lengths, [float(y) for y in labels]) > 0.5  # the hazard is in the data
    before = grouped_batches(lengths, batch, seed=1, labels=labels, plan=GroupingPlan(stratify=False))
    assert _one_label_share(before, labels) > 0.5  # issue 19's order: most batches hold one label
    assert _one_label_share(grouped_batches(lengths, batch, seed=1, labels=labels), labels) == 0


def test_the_default_order_is_as_accurate_as_random_batches_where_length_tells_the_label(tmp_path: Path) -> None:
    from tests.support import assets

    folder = assets.length_tilted()

    random_acc, random_pad = _accuracy(order_study_spec(folder, "label", seed=1, grouped=False), tmp_path / "r")
    default_spec = order_study_spec(folder, "label", seed=1, grouped=None)  # groupByLength left at its default
    default_acc, default_pad = _accuracy(default_spec, tmp_path / "d")
    assert default_acc >= random_acc - MARGIN, f"default order {default_acc:.3f}, random batches {random_acc:.3f}"
    assert default_pad < random_pad, "the default order must still save padding"
