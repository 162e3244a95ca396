"""Publishing is atomic: a failed upload leaves no manifest (not even a stale one); a rerun completes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune_api.v1alpha1.enums import FailureClass
from finetune_trainer.artifacts.manifest import verify
from finetune_trainer.errors import EXIT_CODES, StorageError
from finetune_trainer.main import RunOptions, execute
from finetune_trainer.storage import open_store
from finetune_trainer.storage.s3 import S3Store
from finetune_trainer.training.checkpoints import CheckpointStore
from tests.integration.trainer.jobs import tweets_job

pytestmark = pytest.mark.training


def test_failed_upload_leaves_no_manifest_and_rerun_completes(
    shipped_s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = tweets_job("publish", shipped_s3, training={"maxSteps": 4})
    out = open_store(job.spec.output.uri, job.spec.s3)
    opts = RunOptions(work_dir=tmp_path / "w1", progress_bar=False, termination_log=str(tmp_path / "t1"))
    assert execute(job, opts)[0] == 0
    assert out.exists("manifest.json")
    first = json.loads(out.read_bytes("metrics.json"))

    # The store breaks half way through copying the files into place (a network cut, a quota).
    real_copy = S3Store.copy
    calls = {"n": 0}

    def flaky_copy(self: S3Store, src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] > 2:
            raise StorageError("connection reset while copying")
        real_copy(self, src, dst)

    monkeypatch.setattr(S3Store, "copy", flaky_copy)
    code, _ = execute(
        job, RunOptions(work_dir=tmp_path / "w2", progress_bar=False, termination_log=str(tmp_path / "t2"))
    )
    assert code == EXIT_CODES[FailureClass.STORAGE_ERROR]
    assert json.loads((tmp_path / "t2").read_text())["reason"] == "StorageError"
    assert not out.exists("manifest.json"), "a half-published output still had a manifest"

    checkpoints = CheckpointStore(open_store(job.spec.output.uri + "checkpoints/", job.spec.s3), 2)
    assert [c.step for c in checkpoints.complete()][-1] == 4, "a rerun after the last step trained past maxSteps"

    monkeypatch.setattr(S3Store, "copy", real_copy)
    assert (
        execute(job, RunOptions(work_dir=tmp_path / "w3", progress_bar=False, termination_log=str(tmp_path / "t3")))[0]
        == 0
    )
    # It resumed at the last step: straight to evaluation and publishing, no fifth step (issue 21).
    assert max(c.step for c in checkpoints.complete()) == 4, "the rerun trained past maxSteps"
    rerun = json.loads(out.read_bytes("metrics.json"))
    assert rerun["steps"] == 4
    assert rerun["tuned"]["eval_loss"] == pytest.approx(first["tuned"]["eval_loss"], abs=1e-6), "weights not loaded"
    manifest = json.loads(out.read_bytes("manifest.json"))
    local = tmp_path / "download"
    out.download_all(local, keys=[f["path"] for f in manifest["files"]])
    assert verify(local, manifest) == []
    assert manifest["baseModel"]["uri"] == job.spec.model.uri and manifest["seed"] == job.spec.training.seed
    assert set(manifest["datasets"]) == {job.spec.dataset.train, job.spec.dataset.eval}
    verified = manifest["verifiedDownloads"]  # what each input was checked against (issue 21)
    assert "ETag" in verified["s3://models/all-minilm-l6-v2/model.safetensors"], verified
    assert set(verified) >= {job.spec.dataset.train, job.spec.dataset.eval, "s3://models/all-minilm-l6-v2/config.json"}
    # What the run used, defaults included: the manifest and metrics.json both carry the resolved spec.
    metrics = json.loads(out.read_bytes("metrics.json"))
    for recorded in (manifest["spec"], metrics["spec"]):
        method, training = recorded["method"], recorded["training"]
        assert (method["r"], method["alpha"], method["dropout"]) == (16, 32.0, 0.05), method
        assert method["targetModules"] == ["query", "value"], "MiniLM is a BERT: PEFT's BERT targets, recorded"
        assert training["learningRate"] == 2e-4 and recorded["dataset"]["maxLength"] == 512
        assert recorded["output"]["checkpointUri"] == f"{job.spec.output.uri}checkpoints/"
    assert "learningRate: 0.0002" in (local / "README.md").read_text(), "the model card shows the resolved spec"
    assert not [o.key for o in out.list_objects(".staging/")], (
        "staging files were left behind after a successful publish"
    )


def test_gate_not_met_keeps_artifacts_in_staging_without_manifest(shipped_s3: str, tmp_path: Path) -> None:
    job = tweets_job(
        "gated",
        shipped_s3,
        training={"maxSteps": 2},
        evaluation={"gate": {"metric": "accuracy", "minImprovement": 0.9}},
    )
    term = tmp_path / "t"
    code, _ = execute(job, RunOptions(work_dir=tmp_path, progress_bar=False, termination_log=str(term)))
    assert code == EXIT_CODES[FailureClass.GATE_NOT_MET]
    out = open_store(job.spec.output.uri, job.spec.s3)
    assert not out.exists("manifest.json")
    staged = [o.key for o in out.list_objects(".staging/")]
    assert any(k.endswith("GATE_NOT_MET.json") for k in staged) and any(k.endswith("metrics.json") for k in staged)
    assert "gate not met" in json.loads(term.read_text())["message"]
