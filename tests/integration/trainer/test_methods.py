"""Every method trains through S3 (a real S3 protocol server) and lowers the eval loss of the untouched model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from finetune_api.v1alpha1.enums import FailureClass
from finetune_trainer.errors import EXIT_CODES
from finetune_trainer.main import RunOptions, execute
from finetune_trainer.storage import open_store
from tests.integration.trainer.jobs import tweets_job

pytestmark = pytest.mark.training

CLASSIFICATION_METHODS: dict[str, dict[str, Any]] = {
    "full": {"type": "full"},
    "feature-extraction": {"type": "feature-extraction"},
    "partial": {"type": "partial", "layers": 2},
    "layerwise-lr": {"type": "layerwise-lr", "decay": 0.8},
    "lora": {"type": "lora", "r": 8},
    "prompt-tuning": {
        "type": "prompt-tuning",
        "virtualTokens": 10,
        "initText": "Is this tweet negative, neutral or positive?",
    },
    "prefix-tuning": {"type": "prefix-tuning", "virtualTokens": 10},
    "ia3": {"type": "ia3"},
}


@pytest.mark.parametrize("method", sorted(CLASSIFICATION_METHODS))
def test_method_lowers_eval_loss(method: str, shipped_s3: str, tmp_path: Path) -> None:
    job = tweets_job(f"m-{method}", shipped_s3, method=CLASSIFICATION_METHODS[method])
    code, result = execute(
        job, RunOptions(work_dir=tmp_path, progress_bar=False, termination_log=str(tmp_path / "term"))
    )
    assert code == 0, (tmp_path / "term").read_text() if (tmp_path / "term").exists() else code
    assert result is not None
    base, tuned = result.measured.baseline["eval_loss"], result.measured.tuned["eval_loss"]
    assert tuned < base, f"{method}: eval loss {base:.4f} -> {tuned:.4f}"
    cost = result.measured.cost
    trainable, total = cost.trainable_parameters or 0, cost.total_parameters or 0
    assert 0 < trainable <= total
    if method not in ("full", "layerwise-lr"):
        assert trainable < total / 2, f"{method} trains {trainable} of {total}"
    out = open_store(job.spec.output.uri, job.spec.s3)
    keys = {o.key for o in out.list_objects()}
    assert "manifest.json" in keys and "metrics.json" in keys and "loss_curve.png" in keys
    weights = (
        "adapter/adapter_model.safetensors"
        if method in ("lora", "prompt-tuning", "prefix-tuning", "ia3")
        else "model/model.safetensors"
    )
    assert weights in keys


def test_qlora_on_cpu_is_a_clear_config_error(shipped_s3: str, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: qlora runs here (the CPU error path is what this test checks)")
    job = tweets_job("qlora-cpu", shipped_s3, method={"type": "qlora"}, resources={"gpus": 1})
    term = tmp_path / "term"
    code, _ = execute(job, RunOptions(work_dir=tmp_path, progress_bar=False, termination_log=str(term)))
    assert code == EXIT_CODES[FailureClass.CONFIG_ERROR]
    assert "CUDA GPU" in term.read_text() and "lora" in term.read_text()
