"""Interruptions lose no work: SIGKILL then restart resumes from the last complete checkpoint in S3."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import yaml

from finetune_trainer.storage import open_store
from finetune_trainer.training.checkpoints import CheckpointStore
from tests.integration.trainer.jobs import launch_trainer, tweets_job

pytestmark = pytest.mark.training
TOTAL = 40


def test_sigkill_then_restart_resumes_without_repeating_steps(shipped_s3: str, mlflow_uri: str, tmp_path: Path) -> None:
    """The resumed attempt continues the run in S3 and the one in MLflow, neither with a step twice."""
    job = tweets_job(
        "resume",
        shipped_s3,
        dataset={"maxSamples": 640, "maxEvalSamples": 64},
        training={"maxSteps": TOTAL, "batchSize": 16, "loggingSteps": 1},
        output={"checkpointEvery": 10, "keepCheckpoints": 2},
        tracking={"mlflow": {"uri": mlflow_uri, "experiment": "resumed"}},
    )
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(job.model_dump(by_alias=True, exclude_none=True, mode="json")))
    checkpoints = CheckpointStore(open_store(job.spec.output.uri + "checkpoints/", job.spec.s3), 2)

    first = launch_trainer(config, tmp_path / "pod1", tmp_path / "status1.json", tmp_path / "pod1.log")
    deadline = time.time() + 300
    while time.time() < deadline:
        if first.poll() is not None:
            pytest.fail(
                "the first run ended before it could be killed:\n" + (tmp_path / "pod1.log").read_text()[-3000:]
            )
        done = checkpoints.complete()
        status = json.loads((tmp_path / "status1.json").read_text()) if (tmp_path / "status1.json").exists() else {}
        if done and status.get("step", 0) >= done[-1].step + 3:
            break
        time.sleep(0.2)
    else:
        pytest.fail("no checkpoint appeared in time")
    first.send_signal(signal.SIGKILL)  # no chance to save: the pod vanished
    first.wait()
    killed_at = json.loads((tmp_path / "status1.json").read_text())["step"]
    resume_step = checkpoints.complete()[-1].step
    assert resume_step < killed_at < TOTAL

    # A new pod: fresh local disk, only the object store survives.
    second = launch_trainer(config, tmp_path / "pod2", tmp_path / "status2.json", tmp_path / "pod2.log")
    assert second.wait(timeout=600) == 0, (tmp_path / "pod2.log").read_text()[-3000:]
    log = (tmp_path / "pod2.log").read_text()
    assert f"(step {resume_step})" in log
    metrics = json.loads(open_store(job.spec.output.uri, job.spec.s3).read_bytes("metrics.json"))
    assert metrics["steps"] == TOTAL
    logged = [p["step"] for p in metrics["loss_history"] if "train_loss" in p]
    # Every step once: those up to the checkpoint from its trainer state, the rest from the resumed run.
    assert logged == list(range(1, TOTAL + 1)), "the resumed run repeated or skipped steps"
    assert len(checkpoints.complete()) <= 2, "checkpoint retention was not applied"
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.get_experiment_by_name("resumed")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])  # one run for both attempts
    assert "MLflow: continuing run " + run.info.run_id in log
    tracked = sorted(m.step for m in client.get_metric_history(run.info.run_id, "train_loss"))
    assert tracked == list(range(1, TOTAL + 1)), f"MLflow holds each step once: {tracked}"
    assert run.info.status == "FINISHED"


def test_sigterm_saves_a_checkpoint_and_exits_as_preempted(shipped_s3: str, tmp_path: Path) -> None:
    from finetune_api.v1alpha1.enums import FailureClass
    from finetune_trainer.errors import EXIT_CODES

    job = tweets_job(
        "sigterm",
        shipped_s3,
        dataset={"maxSamples": 640, "maxEvalSamples": 64},
        training={"maxSteps": TOTAL, "batchSize": 16, "loggingSteps": 1},
        output={"checkpointEvery": 1000},  # no periodic checkpoint: only the one SIGTERM asks for
    )
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(job.model_dump(by_alias=True, exclude_none=True, mode="json")))
    checkpoints = CheckpointStore(open_store(job.spec.output.uri + "checkpoints/", job.spec.s3), 2)
    status = tmp_path / "status.json"
    pod = launch_trainer(config, tmp_path / "pod", status, tmp_path / "pod.log")
    deadline = time.time() + 300
    while time.time() < deadline and pod.poll() is None:
        if status.exists() and json.loads(status.read_text()).get("step", 0) >= 5:
            break
        time.sleep(0.2)
    pod.send_signal(signal.SIGTERM)  # what the kubelet sends on preemption or drain
    assert pod.wait(timeout=300) == EXIT_CODES[FailureClass.PREEMPTED], (tmp_path / "pod.log").read_text()[-2000:]
    term = json.loads(Path(str(tmp_path / "pod") + ".term").read_text())
    assert term["reason"] == "Preempted"
    saved = checkpoints.complete()
    assert saved and 5 <= saved[-1].step < TOTAL, "SIGTERM did not leave a checkpoint to resume from"
