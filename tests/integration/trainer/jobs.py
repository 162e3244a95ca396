"""Small, fast FineTuneJobs for the trainer tests, built on the shipped assets."""

from __future__ import annotations

from typing import Any

from finetune_api.spec.job import FineTuneJob
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
