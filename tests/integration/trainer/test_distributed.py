"""`accelerate launch` with two processes (gloo on CPU): one download per node, one publish, one manifest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import assets

pytestmark = pytest.mark.training


def test_two_process_launch(tmp_path: Path) -> None:
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable))
    assert accelerate, "accelerate is a trainer dependency"
    tweets = assets.tweets()
    job = {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "ddp", "namespace": "tests"},
        "spec": {
            "model": {"uri": str(assets.minilm()) + "/"},
            "task": {"type": "sequence-classification", "labelColumn": "sentiment"},
            "dataset": {
                "train": str(tweets / "train.csv"),
                "eval": str(tweets / "eval.csv"),
                "maxSamples": 256,
                "maxEvalSamples": 64,
            },
            "method": {"type": "lora"},
            "training": {"maxSteps": 8, "batchSize": 8, "loggingSteps": 2},
            "output": {"uri": str(tmp_path / "out") + "/", "checkpointEvery": 4},
        },
    }
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(job))
    launch = [accelerate, "launch", "--cpu", "--num_processes=2", "--num_machines=1", "--mixed_precision=no"]
    trainer = ["-m", "finetune_trainer", "--config", str(config), "--work-dir", str(tmp_path / "work")]
    cmd = [*launch, "--dynamo_backend=no", *trainer, "--termination-log", str(tmp_path / "term")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["steps"] == 8
    # Length-grouped order under accelerate's sharding: random batches of 8 tweets compute ~30% padding.
    assert metrics["train_padding_fraction"] < 0.15, metrics["train_padding_fraction"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert any(f["path"] == "adapter/adapter_model.safetensors" for f in manifest["files"])
    assert not list((tmp_path / "out").glob(".staging/*")), "staged files were left behind"
    assert len([e for e in manifest["files"] if e["path"] == "metrics.json"]) == 1
    assert {p.name for p in (tmp_path / "out" / "checkpoints").glob("step-*")} == {"step-000000004", "step-000000008"}
