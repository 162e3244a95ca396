"""Small, fast FineTuneJobs for the trainer tests, built on the shipped assets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from finetune_api.v1alpha1.job import FineTuneJob
from tests.conftest import merge


def tweets_job(name: str, endpoint: str, **changes: Any) -> FineTuneJob:
    base: dict[str, Any] = {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": name, "namespace": "tests"},
        "spec": {
            "model": {"uri": "s3://models/all-minilm-l6-v2/"},
            "task": {"type": "sequence-classification", "textColumn": "text", "labelColumn": "sentiment"},
            "dataset": {
                "train": "s3://data/tweets/train.csv",
                "eval": "s3://data/tweets/eval.csv",
                "maxSamples": 256,
                "maxEvalSamples": 256,
            },
            "method": {"type": "lora"},
            "training": {"maxSteps": 12, "batchSize": 16, "loggingSteps": 4},
            "output": {"uri": f"s3://models/out/{name}/"},
            "s3": {"endpoint": endpoint},
        },
    }
    return FineTuneJob.model_validate(merge(base, {"spec": changes} if changes else {}))


def order_study_spec(
    folder: Path, label_column: str, seed: int, grouped: bool | None, rows: int = 800
) -> dict[str, Any]:
    """Issue 19's job on local files: MiniLM, LoRA r 16 / alpha 32, 2 epochs, learning rate 1e-3, batch 16.

    `grouped` None leaves training.groupByLength at its default. Rows are cut at 128 tokens, which
    keeps two epochs of long reviews to minutes on CPU.
    """
    from tests.support import assets

    training: dict[str, Any] = {"epochs": 2, "batchSize": 16, "learningRate": 1e-3, "seed": seed}
    training["loggingSteps"] = 10_000
    if grouped is not None:
        training["groupByLength"] = grouped
    return {
        "model": {"uri": f"{assets.minilm()}/"},
        "task": {"type": "sequence-classification", "labelColumn": label_column},
        "dataset": {"train": str(folder / "train.csv"), "eval": str(folder / "eval.csv"), "maxSamples": rows,
                    "maxEvalSamples": 600, "maxLength": 128},
        "method": {"type": "lora", "r": 16, "alpha": 32},
        "training": training,
        "evaluation": {"baseline": False},
    }  # fmt: skip


def launch_trainer(config: Path, work: Path, status: Path, log: Path) -> subprocess.Popen[bytes]:
    """The trainer as its own process, as a pod runs it: a job file, a work folder, a status file and a log."""
    cmd = [sys.executable, "-m", "finetune_trainer", "--config", str(config), "--work-dir", str(work)]
    cmd += ["--status-file", str(status), "--termination-log", str(work) + ".term"]
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=os.environ.copy())
