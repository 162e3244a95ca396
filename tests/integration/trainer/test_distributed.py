"""Two ranks started exactly as the operator renders a `gpus: 0, nodes: 2` job: one torchrun per "pod"
(here two processes on 127.0.0.1), a gloo group of two, one download per rank, one publish, one manifest.

Before issue 20 this test ran `accelerate launch --cpu --num_processes=2`, which starts a single process:
it passed while no group was ever formed, and the rendered pods trained two independent models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from finetune_api.exit_codes import EXIT_CODES
from finetune_api.pod_contract import CONFIG_FILE, TerminationMessage
from finetune_api.resolve import resolve_job
from finetune_api.v1alpha1.enums import FailureClass
from finetune_api.validation import validate_document
from finetune_operator.render import render
from finetune_operator.settings import OperatorSettings
from tests.conftest import free_port
from tests.support import assets

pytestmark = pytest.mark.training


def _rank_commands(
    job: dict[str, object], config: Path, work: Path, settings: OperatorSettings | None = None
) -> list[list[str]]:
    """Each pod's command from the rendered Job, with the values the kubelet would put in its $(VARS)."""
    result = validate_document(job)
    assert result.errors == [] and result.job is not None, result.errors  # the operator renders valid specs only
    settings = settings or OperatorSettings()
    objects = render(resolve_job(result.job, pod=settings.pod_defaults), settings).objects
    rendered = next(o for o in objects if o["kind"] == "Job")
    command: list[str] = rendered["spec"]["template"]["spec"]["containers"][0]["command"]
    port = str(free_port())
    commands = []
    for rank in range(2):
        values = {"$(NNODES)": "2", "$(NODE_RANK)": str(rank), "$(MASTER_ADDR)": "127.0.0.1", "$(MASTER_PORT)": port}
        args = [sys.executable if a == "python" else str(config) if a == CONFIG_FILE else a for a in command]
        for var, value in values.items():
            args = [a.replace(var, value) for a in args]
        commands.append(
            [*args, "--work-dir", str(work / f"rank{rank}"), "--termination-log", str(work / f"term{rank}")]
        )
    return commands


def _job(tmp_path: Path, model: Path, tweets: Path) -> dict[str, object]:
    return {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "ddp", "namespace": "tests"},
        "spec": {
            "model": {"uri": f"{model}/"},
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
            "resources": {"gpus": 0, "nodes": 2},
        },
    }


def test_two_ranks_as_rendered_train_one_model_and_publish_once(tmp_path: Path) -> None:
    job = _job(tmp_path, assets.minilm(), assets.tweets())
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(job))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two ranks share this machine's cores
    ranks = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for cmd in _rank_commands(job, config, tmp_path)
    ]
    logs = [r.communicate(timeout=600)[0] for r in ranks]
    assert [r.returncode for r in ranks] == [0, 0], "\n".join(log[-3000:] for log in logs)
    for rank, log in enumerate(logs):
        assert f"rank {rank} of 2 (MULTI_CPU)" in log, log[-3000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["steps"] == 8
    # Length-grouped order under accelerate's sharding: random batches of 8 tweets compute ~30% padding.
    assert metrics["cost"]["padding_fraction"] < 0.15, metrics["cost"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert any(f["path"] == "adapter/adapter_model.safetensors" for f in manifest["files"])
    assert not list((tmp_path / "out").glob(".staging/*")), "staged files were left behind"
    assert len([e for e in manifest["files"] if e["path"] == "metrics.json"]) == 1
    assert {p.name for p in (tmp_path / "out" / "checkpoints").glob("step-*")} == {"step-000000004", "step-000000008"}
    # Only rank 0 publishes: rank 1 never stages an output of its own.
    assert not (tmp_path / "rank1" / "output").exists() and (tmp_path / "rank0" / "output").exists()


@pytest.mark.parametrize("rank", [0, 1])
def test_a_rank_whose_peer_never_comes_fails_in_bounded_time_naming_the_rendezvous(tmp_path: Path, rank: int) -> None:
    """Rank 0 waits for a worker that never joins; rank 1 dials a rank 0 that is not there. Neither hangs.

    The trainer never starts here, so its model and data need not exist."""
    job = _job(tmp_path, tmp_path / "model", tmp_path / "tweets")
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(job))
    timeout = 10
    command = _rank_commands(job, config, tmp_path, OperatorSettings(rendezvous_timeout_seconds=timeout))[rank]
    log = tmp_path / "termination-log"
    env = {**os.environ, "FINETUNE_TERMINATION_LOG": str(log)}
    started = time.monotonic()
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout + 120, check=False)
    elapsed = time.monotonic() - started
    assert out.returncode == EXIT_CODES[FailureClass.INTERNAL_ERROR], out.stdout[-2000:] + out.stderr[-2000:]
    assert elapsed < timeout + 60, f"{elapsed:.0f} s for a {timeout} s rendezvous timeout"
    message = TerminationMessage.model_validate_json(log.read_text())
    assert message.reason == FailureClass.INTERNAL_ERROR
    port = next(a.split("=")[1] for a in command if a.startswith("--master_port="))
    assert f"rendezvous 127.0.0.1:{port} within {timeout} s" in message.message, message.message
    assert f"rank {rank} of 2" in message.message


def test_both_ranks_exit_with_the_trainers_code_not_torchruns(tmp_path: Path) -> None:
    """A data error ends the job at once (podFailurePolicy reads exit code 11); torchrun alone would exit 1."""
    data = tmp_path / "tweets"
    data.mkdir()
    for split in ("train", "eval"):
        (data / f"{split}.csv").write_text("text,mood\nhello,happy\nbye,sad\n")  # no `sentiment` column
    job = _job(tmp_path, tmp_path / "model", data)
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(job))
    ranks = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for cmd in _rank_commands(job, config, tmp_path)
    ]
    logs = [r.communicate(timeout=300)[0] for r in ranks]
    data_error = EXIT_CODES[FailureClass.DATA_ERROR]
    assert [r.returncode for r in ranks] == [data_error, data_error], "\n".join(log[-2000:] for log in logs)
    message = TerminationMessage.model_validate_json((tmp_path / "term0").read_text())
    assert message.reason == FailureClass.DATA_ERROR and "sentiment" in message.message, message
