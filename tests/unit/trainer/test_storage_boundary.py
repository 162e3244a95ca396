"""The storage boundary: every entry point of the S3 store, through every family of error the SDK raises,
ends as StorageError naming the operation and the s3:// object, within the retry budget (issue 21).

The client here raises what botocore, boto3 and s3transfer raise; the faults on the wire (a real S3 server
behind a fault-injecting proxy) are in tests/integration/trainer/test_storage_faults.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3.exceptions
import pytest
import s3transfer.exceptions
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    FlexibleChecksumError,
    IncompleteReadError,
    ReadTimeoutError,
)

from finetune_api.storage_uri import parse_uri
from finetune_api.v1alpha1.storage import S3Spec
from finetune_trainer.errors import EXIT_CODES, StorageError
from finetune_trainer.storage import retry
from finetune_trainer.storage.s3 import S3Store, md5_etag

BUDGET = 60


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": f"{code} said the store"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


def _wrapped(outer: type[Exception], inner: Exception) -> Exception:
    """A wrapper raised while handling `inner`, as boto3's managed transfers raise it (the cause as context)."""
    wrapper = outer("Failed to transfer: " + str(inner))
    wrapper.__context__ = inner
    return wrapper


FAMILIES: dict[str, tuple[Callable[[], Exception], bool, str]] = {
    # name: (the exception, transient?, what the message must say)
    "client error": (lambda: _client_error("AccessDenied", 403), False, "AccessDenied"),
    "server error": (lambda: _client_error("SlowDown", 503), True, "SlowDown"),
    "retries exhausted": (
        lambda: boto3.exceptions.RetriesExceededError(IncompleteReadError(actual_bytes=10, expected_bytes=20)),
        True,
        "cut short",
    ),
    "transfer retries exhausted": (
        lambda: s3transfer.exceptions.RetriesExceededError(ReadTimeoutError(endpoint_url="http://s3")),
        True,
        "stalled",
    ),
    "upload failed": (
        lambda: _wrapped(boto3.exceptions.S3UploadFailedError, _client_error("InternalError", 500)),
        True,
        "InternalError",
    ),
    "connect timeout": (lambda: ConnectTimeoutError(endpoint_url="http://s3"), True, "cannot connect"),
    "read timeout": (lambda: ReadTimeoutError(endpoint_url="http://s3"), True, "no byte arrived for 30 s"),
    "incomplete read": (lambda: IncompleteReadError(actual_bytes=1, expected_bytes=2), True, "cut short"),
    "checksum mismatch": (lambda: FlexibleChecksumError(error_msg="crc32 differs"), True, "checksum mismatch"),
}


class FailingClient:
    """Every S3 call raises the same error."""

    def __init__(self, error: Callable[[], Exception]) -> None:
        self.error = error
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if name == "get_paginator":
                return self  # .paginate(...) raises
            self.calls += 1
            raise self.error()

        return call

    def paginate(self, **kwargs: Any) -> Any:
        self.calls += 1
        raise self.error()


ENTRY_POINTS: dict[str, Callable[[S3Store, Path], Any]] = {
    "list": lambda s, tmp: s.list_objects("checkpoints/"),
    "exists": lambda s, tmp: s.exists("manifest.json"),
    "download": lambda s, tmp: s.download("model.safetensors", tmp / "model.safetensors"),
    "download_all": lambda s, tmp: s.download_all(tmp / "all", keys=["data/train.csv"]),
    "upload": lambda s, tmp: s.upload(tmp / "local.bin", "checkpoints/step-000000010/adapter.safetensors"),
    "upload_all": lambda s, tmp: s.upload_all(tmp / "folder", ".staging/"),
    "read": lambda s, tmp: s.read_bytes("report.json"),
    "write": lambda s, tmp: s.write_bytes("manifest.json", b"{}"),
    "copy": lambda s, tmp: s.copy(".staging/a", "a"),
    "delete": lambda s, tmp: s.delete(["old/a", "old/b"]),
}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A clock that the retry loop's sleeps advance, so a budget of minutes passes in no time."""
    now = [1000.0]
    monkeypatch.setattr(retry.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(retry.time, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    return now


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_turns_every_sdk_error_into_a_bounded_storage_error(
    entry: str, family: str, clock: list[float], tmp_path: Path
) -> None:
    make_error, transient, says = FAMILIES[family]
    spec = S3Spec(endpoint="http://127.0.0.1:9", stallSeconds=30, retryBudgetSeconds=BUDGET)
    store = S3Store(parse_uri("s3://bucket/out/job/"), spec)
    store.client = FailingClient(make_error)
    (tmp_path / "local.bin").write_bytes(b"x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "f.txt").write_text("f")
    before = retry.TALLY.snapshot()
    started = clock[0]

    with pytest.raises(StorageError) as caught:
        ENTRY_POINTS[entry](store, tmp_path)

    message = str(caught.value)
    assert "s3://bucket/out/job/" in message, f"the object is not named: {message}"
    assert says in message, message
    assert caught.value.exit_code == EXIT_CODES[caught.value.failure]
    spent = clock[0] - started
    retried = sum(retry.TALLY.snapshot().values()) - sum(before.values())
    if transient:
        assert "retry budget 60 s" in message and spent <= BUDGET, (spent, message)
        assert retried >= 3, "a transient failure was not retried (or the retries were not counted)"
    else:
        assert store.client.calls == 1 and retried == 0, "a permanent failure was retried"


def test_a_local_disk_error_is_a_storage_error_not_a_retry(clock: list[float], tmp_path: Path) -> None:
    store = S3Store(parse_uri("s3://bucket/out/"), S3Spec(endpoint="http://127.0.0.1:9"))
    store.client = FailingClient(lambda: OSError(28, "No space left on device"))
    with pytest.raises(StorageError, match="No space left on device on this machine's disk"):
        store.download("model.safetensors", tmp_path / "m")


@pytest.mark.parametrize("parts", [0, 1, 3])
def test_md5_etag_matches_what_s3_computes(parts: int, tmp_path: Path) -> None:
    import hashlib

    data = bytes(range(256)) * 40  # 10240 bytes
    path = tmp_path / "blob"
    path.write_bytes(data)
    if not parts:
        assert md5_etag(path, 0, 0) == hashlib.md5(data, usedforsecurity=False).hexdigest()
        return
    size = -(-len(data) // parts)
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    expected = (
        hashlib.md5(
            b"".join(hashlib.md5(c, usedforsecurity=False).digest() for c in chunks), usedforsecurity=False
        ).hexdigest()
        + f"-{len(chunks)}"
    )
    assert md5_etag(path, size, len(chunks)) == expected


def test_retries_reach_the_prometheus_counter_by_operation() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from finetune_trainer.observability.progress import ProgressState
    from finetune_trainer.observability.prometheus import PrometheusSink

    sink = PrometheusSink("ns", "job", 0, CollectorRegistry())
    sink.update(ProgressState(storage_retries={"download": 2, "GetObject": 1}))
    sink.update(ProgressState(storage_retries={"download": 5, "GetObject": 1}))
    text = generate_latest(sink.registry).decode()
    assert 'finetune_trainer_storage_retries_total{finetunejob="job",namespace="ns",operation="download"} 5.0' in text
    assert 'operation="GetObject"} 1.0' in text
