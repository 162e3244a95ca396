"""LoRA and full fine-tuning of the shipped MiniLM on the shipped tweets beat the untouched model's accuracy."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune_trainer.main import RunOptions, execute
from tests.integration.trainer.jobs import tweets_job

pytestmark = pytest.mark.training


@pytest.mark.parametrize(
    ("method", "lr"),
    [({"type": "lora", "r": 16, "alpha": 32}, 1e-3), ({"type": "full"}, 5e-5)],
    ids=["lora", "full"],
)
def test_tuned_accuracy_beats_baseline_on_held_out_tweets(
    method: dict[str, object], lr: float, shipped_s3: str, tmp_path: Path
) -> None:
    job = tweets_job(
        f"beat-{method['type']}",
        shipped_s3,
        method=method,
        dataset={"maxSamples": 2000, "maxEvalSamples": 600},
        training={"maxSteps": None, "epochs": 1, "batchSize": 32, "learningRate": lr},
        evaluation={"gate": {"metric": "accuracy", "minImprovement": 0.05}},
    )
    code, result = execute(job, RunOptions(work_dir=tmp_path, progress_bar=False, termination_log=str(tmp_path / "t")))
    assert code == 0 and result is not None, (tmp_path / "t").read_text()
    base, tuned = result.measured.baseline["eval_accuracy"], result.measured.tuned["eval_accuracy"]
    assert tuned >= base + 0.05, f"accuracy {base:.3f} -> {tuned:.3f}"
    assert result.measured.gate is not None and result.measured.gate.passed
