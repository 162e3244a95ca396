"""Storage faults on the wire: a real S3 server (moto on 127.0.0.1) behind a fault-injecting proxy
(tests/support/faults.py). Every fault is survived, or ends as StorageError naming the object within the
retry budget; nothing half-fetched is kept and nothing half-published looks complete (issue 21)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from finetune_api.v1alpha1.enums import FailureClass
from finetune_api.v1alpha1.storage import S3Spec
from finetune_trainer.artifacts.manifest import verify
from finetune_trainer.errors import EXIT_CODES, StorageError
from finetune_trainer.main import RunOptions, execute
from finetune_trainer.storage import open_store, retry, s3
from tests.integration.trainer.jobs import tweets_job
from tests.support.faults import FaultProxy, Rule

MiB = 1 << 20
FAST = {"stallSeconds": 5, "retryBudgetSeconds": 20}  # faults end in seconds here, not the default minutes


@pytest.fixture
def proxy(shipped_s3: str) -> Iterator[FaultProxy]:
    with FaultProxy(upstream_port=urlparse(shipped_s3).port or 80) as running:
        yield running


def _store(proxy: FaultProxy, uri: str, **spec: int) -> s3.S3Store:
    store = open_store(uri, S3Spec.model_validate({"endpoint": proxy.endpoint, **FAST, **spec}))
    assert isinstance(store, s3.S3Store)
    return store


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Multipart transfers from 5 MiB (S3's smallest part), so a test object of a few MiB is fetched by ranges."""
    monkeypatch.setattr(
        s3, "TRANSFER", s3.TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4)
    )


def test_a_ranged_get_that_comes_back_half_is_caught_by_its_etag_and_fetched_again(
    proxy: FaultProxy, small_parts: None, tmp_path: Path
) -> None:
    data = os.urandom(12 * MiB)
    (tmp_path / "blob").write_bytes(data)
    store = _store(proxy, "s3://models/faults/")
    store.upload(tmp_path / "blob", "model.safetensors")
    assert "-3" in store.list_objects("model.safetensors")[0].etag, "the object was not uploaded in three parts"

    # The first ranged GET answers half its bytes with an honest Content-Length: it looks whole.
    proxy.rules.append(Rule("short", method="GET", path="model.safetensors", ranged_only=True, times=1))
    before = sum(retry.TALLY.snapshot().values())
    store.download("model.safetensors", tmp_path / "fetched")

    assert proxy.hit_count("short") == 1
    fetched = (tmp_path / "fetched").read_bytes()
    assert hashlib.sha256(fetched).digest() == hashlib.sha256(data).digest(), "a corrupt download was kept"
    assert sum(retry.TALLY.snapshot().values()) > before, "the mismatch was not retried (or not counted)"
    assert not list(tmp_path.glob("*.partial"))


def test_a_body_always_cut_short_ends_as_a_storage_error_naming_the_object(proxy: FaultProxy, tmp_path: Path) -> None:
    proxy.rules.append(Rule("cut", method="GET", path="model.safetensors"))
    store = _store(proxy, "s3://models/all-minilm-l6-v2/")
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        store.download("model.safetensors", tmp_path / "model.safetensors")
    assert "s3://models/all-minilm-l6-v2/model.safetensors" in str(caught.value)
    assert "retry budget 20 s" in str(caught.value), caught.value
    assert time.monotonic() - started < 60
    assert not (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.partial"))


def test_a_persistent_500_on_upload_ends_as_a_storage_error(proxy: FaultProxy, tmp_path: Path) -> None:
    proxy.rules.append(Rule("status", method="PUT", status=500))
    (tmp_path / "file.bin").write_bytes(b"weights")
    with pytest.raises(StorageError, match=r"upload s3://models/faults/out/file.bin: the store answered InternalError"):
        _store(proxy, "s3://models/faults/out/").upload(tmp_path / "file.bin", "file.bin")


def test_flaky_transfers_are_survived_and_every_retry_is_counted(proxy: FaultProxy, tmp_path: Path) -> None:
    proxy.rules += [
        Rule("reset", method="PUT", times=3),  # the first PUTs: a connection reset
        Rule("status", probability=0.2, status=503),  # one request in five: SlowDown
        Rule("latency", seconds=0.2, probability=0.3),
    ]
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(12):
        (folder / f"part-{i}.bin").write_bytes(os.urandom(4096 + i))
    store = _store(proxy, "s3://models/flaky/", retryBudgetSeconds=120)
    before = sum(retry.TALLY.snapshot().values())
    keys = store.upload_all(folder)
    fetched = store.download_all(tmp_path / "back", keys=keys)
    for path in fetched:
        assert path.read_bytes() == (folder / path.name).read_bytes()
    assert proxy.hit_count("status") > 0 and proxy.hit_count("reset") == 3
    assert sum(retry.TALLY.snapshot().values()) - before >= proxy.hit_count("status"), "retries went uncounted"


@pytest.mark.training
def test_a_store_that_stalls_on_the_model_ends_the_job_in_bounded_time(proxy: FaultProxy, tmp_path: Path) -> None:
    proxy.rules.append(Rule("hang", method="GET", path="all-minilm-l6-v2/model.safetensors"))
    job = tweets_job("stall", proxy.endpoint, s3={"endpoint": proxy.endpoint, **FAST})
    started = time.monotonic()
    code, _ = execute(job, RunOptions(work_dir=tmp_path / "w", progress_bar=False, termination_log=str(tmp_path / "t")))
    took = time.monotonic() - started
    assert code == EXIT_CODES[FailureClass.STORAGE_ERROR]
    term = json.loads((tmp_path / "t").read_text())
    assert term["reason"] == "StorageError"
    assert "s3://models/all-minilm-l6-v2/model.safetensors" in term["message"] and "stalled" in term["message"], term
    # One try holds at most botocore's 3 attempts x 2 transfer tries x the 5 s stall; the 20 s budget stops the rest.
    assert took < 120, f"a stalled store held the job for {took:.0f} s"


@pytest.mark.training
def test_an_outage_at_publishing_is_a_storage_error_and_a_rerun_publishes(proxy: FaultProxy, tmp_path: Path) -> None:
    job = tweets_job("outage", proxy.endpoint, training={"maxSteps": 4}, s3={"endpoint": proxy.endpoint, **FAST})
    proxy.rules.append(Rule("status", method="PUT", path="/out/outage/.staging/", status=500))
    code, _ = execute(
        job, RunOptions(work_dir=tmp_path / "w1", progress_bar=False, termination_log=str(tmp_path / "t1"))
    )
    assert code == EXIT_CODES[FailureClass.STORAGE_ERROR]
    term = json.loads((tmp_path / "t1").read_text())
    assert "s3://models/out/outage/.staging/" in term["message"] and "InternalError" in term["message"], term
    out = _store(proxy, job.spec.output.uri)
    assert not out.exists("manifest.json"), "an output whose publishing failed has a manifest"

    proxy.rules.clear()  # the store is back
    code, _ = execute(
        job, RunOptions(work_dir=tmp_path / "w2", progress_bar=False, termination_log=str(tmp_path / "t2"))
    )
    assert code == 0
    manifest = json.loads(out.read_bytes("manifest.json"))
    out.download_all(tmp_path / "published", keys=[f["path"] for f in manifest["files"]])
    assert verify(tmp_path / "published", manifest) == []
    assert json.loads(out.read_bytes("metrics.json"))["steps"] == 4


@pytest.mark.training
def test_a_checkpoint_that_cannot_be_saved_is_said_and_training_goes_on(
    proxy: FaultProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The policy (README, "When the store fails"): train on, say so, fail at publishing if the store never returns."""
    job = tweets_job(
        "ckpt-outage",
        proxy.endpoint,
        training={"maxSteps": 8},
        output={"checkpointEvery": 2, "keepCheckpoints": 4},
        s3={"endpoint": proxy.endpoint, "stallSeconds": 5, "retryBudgetSeconds": 10},
    )
    proxy.rules.append(Rule("status", method="PUT", path="/checkpoints/step-000000002/", status=500))
    caplog.set_level("INFO", logger="finetune_trainer")
    status = tmp_path / "status.json"
    code, _ = execute(
        job,
        RunOptions(
            work_dir=tmp_path / "w", progress_bar=False, termination_log=str(tmp_path / "t"), status_file=status
        ),
    )
    assert code == 0, (tmp_path / "t").read_text() if (tmp_path / "t").exists() else ""
    said = caplog.text
    assert "checkpoint step 2 was not saved" in said and "InternalError" in said and "training goes on" in said
    assert "checkpoints are saved again" in said
    out = _store(proxy, job.spec.output.uri)
    from finetune_trainer.training.checkpoints import CheckpointStore

    steps = [c.step for c in CheckpointStore(_store(proxy, job.spec.output.uri + "checkpoints/"), 4).complete()]
    assert 2 not in steps and {4, 6, 8} <= set(steps), steps
    assert json.loads(out.read_bytes("metrics.json"))["steps"] == 8
    final = json.loads(status.read_text())
    assert final["checkpoints_failing"] is None and final["storage_retries"], final


@pytest.mark.training
@pytest.mark.parametrize("stage", ["staging", "promotion"])
def test_a_trainer_killed_while_publishing_leaves_no_manifest_and_a_rerun_publishes(
    proxy: FaultProxy, stage: str, tmp_path: Path
) -> None:
    """Kill points at publishing: SIGKILL the trainer as its first staging upload (or its first copy into the
    output) reaches the store. The output then has no manifest; the rerun publishes a verified one."""
    import signal
    import subprocess

    import yaml

    from tests.integration.trainer.jobs import launch_trainer

    name = f"kill-{stage}"
    job = tweets_job(name, proxy.endpoint, training={"maxSteps": 4}, s3={"endpoint": proxy.endpoint, **FAST})
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(job.model_dump(by_alias=True, exclude_none=True, mode="json")))
    pod: list[subprocess.Popen[bytes]] = []
    where = {"staging": Rule("call", method="PUT", path=f"/out/{name}/.staging/", times=1)}
    where["promotion"] = Rule("call", method="PUT", header="x-amz-copy-source", times=1)
    rule = where[stage]
    rule.action = lambda: pod[0].send_signal(signal.SIGKILL)
    proxy.rules.append(rule)

    pod.append(launch_trainer(config, tmp_path / "pod1", tmp_path / "s1.json", tmp_path / "pod1.log"))
    assert pod[0].wait(timeout=600) == -signal.SIGKILL, (tmp_path / "pod1.log").read_text()[-2000:]
    assert rule.hits == 1
    out = _store(proxy, job.spec.output.uri)
    assert not out.exists("manifest.json"), f"a trainer killed at {stage} left a manifest"

    second = launch_trainer(config, tmp_path / "pod2", tmp_path / "s2.json", tmp_path / "pod2.log")
    assert second.wait(timeout=600) == 0, (tmp_path / "pod2.log").read_text()[-3000:]
    manifest = json.loads(out.read_bytes("manifest.json"))
    out.download_all(tmp_path / "published", keys=[f["path"] for f in manifest["files"]])
    assert verify(tmp_path / "published", manifest) == []
    assert json.loads(out.read_bytes("metrics.json"))["steps"] == 4, "the rerun trained again past the last step"
    assert "without training" in (tmp_path / "pod2.log").read_text()
