"""Checkpoints and outputs belong to the run that wrote them (a local store in tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune_api.resolve import resolve_job
from finetune_api.v1alpha1.job import FineTuneJob
from finetune_trainer.errors import ConfigError
from finetune_trainer.storage import open_store
from finetune_trainer.training.checkpoints import CheckpointStore
from finetune_trainer.training.ownership import OWNER, claim_run, run_fingerprint


def _job(tmp_path: Path, name: str = "a", **training: Any) -> FineTuneJob:
    return resolve_job(
        FineTuneJob.model_validate(
            {
                "apiVersion": "finetune.dev/v1alpha1",
                "kind": "FineTuneJob",
                "metadata": {"name": name, "namespace": "t"},
                "spec": {
                    "model": {"uri": "s3://models/m/"},
                    "task": {"type": "sequence-classification"},
                    "dataset": {"train": "s3://data/train.csv"},
                    "method": {"type": "lora"},
                    "training": {"maxSteps": 4, **training},
                    "output": {"uri": str(tmp_path / "out") + "/"},
                },
            }
        )
    )  # the trainer claims with the resolved job


def test_fingerprint_follows_spec_and_data_but_not_scheduling(tmp_path: Path) -> None:
    job = _job(tmp_path)
    base = run_fingerprint(job, {"train": "h1"}, {})
    assert base == run_fingerprint(job, {"train": "h1"}, {})
    assert base != run_fingerprint(job, {"train": "h2"}, {})
    assert base != run_fingerprint(_job(tmp_path, maxSteps=5), {"train": "h1"}, {})
    assert base != run_fingerprint(_job(tmp_path, name="b"), {"train": "h1"}, {})
    suspended = job.model_copy(update={"spec": job.spec.model_copy(update={"suspend": True})})
    assert base == run_fingerprint(suspended, {"train": "h1"}, {})


def _save_one(store: CheckpointStore, tmp_path: Path) -> None:
    local = tmp_path / "ckpt"
    local.mkdir(exist_ok=True)
    (local / "weights").write_text("w")
    store.save(local, 2)


def test_the_same_run_resumes_and_another_is_refused(tmp_path: Path) -> None:
    first = claim_run(_job(tmp_path), {"train": "h1"}, {})
    _save_one(first, tmp_path)
    again = claim_run(_job(tmp_path), {"train": "h1"}, {})  # a restarted pod of the same run
    assert [c.step for c in again.mine()] == [2]
    with pytest.raises(ConfigError) as err:
        claim_run(_job(tmp_path, maxSteps=9), {"train": "h1"}, {})
    assert "holds checkpoints of an earlier run of t/a with a different spec or data" in err.value.message
    assert "spec.output.uri" in err.value.message
    with pytest.raises(ConfigError, match="holds checkpoints of job t/a"):
        claim_run(_job(tmp_path, name="b"), {"train": "h1"}, {})
    assert [c.step for c in again.mine()] == [2], "a refused run must leave the checkpoints alone"


def test_checkpoints_without_an_owner_are_not_taken(tmp_path: Path) -> None:
    job = _job(tmp_path)
    legacy = CheckpointStore(open_store(job.spec.output.uri + "checkpoints/"), 2)
    _save_one(legacy, tmp_path)
    with pytest.raises(ConfigError, match="a run that recorded no fingerprint"):
        claim_run(job, {"train": "h1"}, {})


def test_foreign_markers_are_never_resumed_or_pruned(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "ck") + "/")
    _save_one(CheckpointStore(store, 1, "theirs"), tmp_path)
    mine = CheckpointStore(store, 1, "mine")
    assert mine.restore_newest(tmp_path / "restore") is None
    local = tmp_path / "c2"
    local.mkdir()
    (local / "w").write_text("x")
    mine.save(local, 3)
    assert sorted((c.step, c.fingerprint) for c in mine.complete()) == [(2, "theirs"), (3, "mine")]


def test_a_previous_runs_manifest_is_not_taken_for_this_runs(tmp_path: Path) -> None:
    job = _job(tmp_path)
    out = open_store(job.spec.output.uri)
    out.write_bytes(
        "manifest.json", json.dumps({"fingerprint": "0ld", "job": {"name": "x", "namespace": "t"}}).encode()
    )
    with pytest.raises(ConfigError) as err:
        claim_run(job, {"train": "h1"}, {})
    assert "holds the published output (manifest.json) of job t/x" in err.value.message
    assert not out.exists("checkpoints/" + OWNER), "a refused run claimed the checkpoint prefix"
    fingerprint = run_fingerprint(job, {"train": "h1"}, {})
    out.write_bytes("manifest.json", json.dumps({"fingerprint": fingerprint}).encode())
    claim_run(job, {"train": "h1"}, {})  # this run published already (a pod restarted after publishing)
