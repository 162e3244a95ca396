"""An s3:// prefix through boto3: parallel multipart transfers, credentials from the standard chain.

The endpoint comes from spec.s3.endpoint, else AWS_ENDPOINT_URL (boto3 reads it itself). Credentials
are never passed in: the environment (from the Secret), the pod's web identity (IRSA / workload
identity) or the local profile, as boto3's chain finds them. This module and s3_errors are the only
code that touches boto3: every call goes through `with_retries`, which bounds it and turns what the
SDK raises into StorageError naming the operation and the object.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from finetune_api.redact import WHERE_CREDENTIALS_GO, has_userinfo, redact
from finetune_api.storage_uri import StorageUri
from finetune_api.v1alpha1.storage import S3Spec

from ..errors import ConfigError
from .retry import TALLY, RetryPolicy, with_retries
from .s3_errors import Corrupt
from .store import ObjectInfo
from .verification import VERIFIED

MiB = 1 << 20
TRANSFER = TransferConfig(
    multipart_threshold=64 * MiB, multipart_chunksize=64 * MiB, max_concurrency=8, num_download_attempts=2
)
PARALLEL_FILES = 8
SDK_ATTEMPTS = 3  # per request, inside botocore; the operation's own retries (retry.py) go on from there


def _count_sdk_retry(request: Any, operation_name: str, **_: Any) -> None:
    attempt = request.context.get("retries", {}).get("attempt", 1)
    if attempt > 1:
        TALLY.record(operation_name, f"{operation_name}: attempt {attempt} of {SDK_ATTEMPTS}")


def _client(spec: S3Spec) -> Any:
    config = Config(
        retries={"max_attempts": SDK_ATTEMPTS, "mode": "standard"},
        connect_timeout=min(spec.stall_seconds, 30),
        read_timeout=spec.stall_seconds,
        s3={"addressing_style": spec.addressing_style.value},
        max_pool_connections=PARALLEL_FILES * 8,
    )
    endpoint = spec.endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
    if endpoint and has_userinfo(endpoint):
        source = "spec.s3.endpoint" if spec.endpoint else "AWS_ENDPOINT_URL"
        raise ConfigError(f"{source} ({redact(endpoint)}) carries credentials in the URL; {WHERE_CREDENTIALS_GO}")
    region = spec.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    client = boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name=region or "us-east-1", config=config
    )
    client.meta.events.register("request-created.s3", _count_sdk_retry)
    return client


def md5_etag(path: Path, part_size: int, parts: int) -> str:
    """The ETag S3 gives an object of these bytes: the MD5, or for a multipart upload the MD5 of its parts'
    MD5s followed by -<parts>."""
    with path.open("rb") as fh:
        if not parts:
            digest = hashlib.md5(usedforsecurity=False)
            for block in iter(lambda: fh.read(MiB), b""):
                digest.update(block)
            return digest.hexdigest()
        digests = b""
        for _ in range(parts):
            digests += hashlib.md5(fh.read(part_size), usedforsecurity=False).digest()
        return f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{parts}"


class S3Store:
    def __init__(self, uri: StorageUri, spec: S3Spec | None) -> None:
        self.uri = uri
        self.bucket = uri.bucket
        self.base = uri.key
        self.spec = spec or S3Spec()
        self.client = _client(self.spec)
        self.policy = RetryPolicy(self.spec.stall_seconds, self.spec.retry_budget_seconds)

    def _call(self, operation: str, key: str, attempt: Any) -> Any:
        return with_retries(operation, f"s3://{self.bucket}/{self._key(key)}", self.policy, attempt)

    def _key(self, key: str) -> str:
        if not key:
            return self.base
        return f"{self.base.rstrip('/')}/{key}" if self.base else key

    def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        full = self._key(prefix)
        if full and not full.endswith("/") and not prefix and self.uri.is_prefix:
            full += "/"

        def listing() -> list[ObjectInfo]:
            out = []
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    rel = obj["Key"][len(self.base) :].lstrip("/") if self.base else obj["Key"]
                    out.append(ObjectInfo(rel, obj["Size"], obj.get("ETag", "").strip('"')))
            return out

        result: list[ObjectInfo] = with_retries("list", str(self.uri.join(prefix)), self.policy, listing)
        return result

    def _head(self, key: str, **extra: Any) -> dict[str, Any] | None:
        """The object's metadata, or None where it does not exist."""
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=self._key(key), **extra)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head

    def exists(self, key: str) -> bool:
        return self._call("head", key, lambda: self._head(key)) is not None

    def download(self, key: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".partial")

        def fetch() -> str:
            head = self._head(key)
            if head is None:
                from botocore.exceptions import ClientError

                raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "no such key"}}, "HeadObject")
            try:
                self.client.download_file(self.bucket, self._key(key), str(tmp), Config=TRANSFER)
                return self._verify(key, tmp, head)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

        how: str = self._call("download", key, fetch)
        os.replace(tmp, dest)
        VERIFIED.record(f"s3://{self.bucket}/{self._key(key)}", how)

    def _verify(self, key: str, path: Path, head: dict[str, Any]) -> str:
        """The bytes on disk are the object's: its size, and its ETag where the ETag is an MD5 (not under
        SSE-KMS or SSE-C, where it is not). A ranged GET that came back short is caught here (issue 21).
        Returns what was checked, for the lineage."""
        size, etag = head["ContentLength"], str(head.get("ETag", "")).strip('"')
        got = path.stat().st_size
        if got != size:
            raise Corrupt(f"{got} bytes where the store lists {size}")
        if head.get("ServerSideEncryption") == "aws:kms" or head.get("SSECustomerAlgorithm"):
            return f"size {size} (the ETag of an encrypted object is not its MD5)"
        digest, _, parts = etag.partition("-")
        if len(digest) != 32 or (parts and not parts.isdigit()):
            return f"size {size} (ETag {etag or 'absent'} is not an MD5)"
        part_size = 0
        if parts:
            first = self._head(key, PartNumber=1)
            part_size = int(first["ContentLength"]) if first else 0
            if not part_size:
                return f"size {size} (the store does not say the size of its parts)"
        if (local := md5_etag(path, part_size, int(parts or 0))) != etag:
            raise Corrupt(f"ETag of the bytes received is {local}, the store's is {etag}")
        return f"size {size} and ETag {etag}" + (f" ({parts} parts of {part_size} bytes)" if parts else " (MD5)")

    def download_all(self, dest: Path, prefix: str = "", keys: list[str] | None = None) -> list[Path]:
        wanted = keys if keys is not None else [o.key for o in self.list_objects(prefix)]
        targets = [dest / (k[len(prefix) :].lstrip("/") if prefix else k) for k in wanted]
        with ThreadPoolExecutor(PARALLEL_FILES) as pool:
            list(pool.map(self.download, wanted, targets))
        return targets

    def upload(self, src: Path, key: str) -> None:
        target = self._key(key)
        self._call("upload", key, lambda: self.client.upload_file(str(src), self.bucket, target, Config=TRANSFER))

    def upload_all(self, src_dir: Path, prefix: str = "") -> list[str]:
        files = sorted(p for p in src_dir.rglob("*") if p.is_file())
        keys = [
            f"{prefix.rstrip('/')}/{p.relative_to(src_dir).as_posix()}" if prefix else p.relative_to(src_dir).as_posix()
            for p in files
        ]
        with ThreadPoolExecutor(PARALLEL_FILES) as pool:
            list(pool.map(self.upload, files, keys))
        return keys

    def read_bytes(self, key: str) -> bytes:
        def read() -> bytes:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            body: bytes = response["Body"].read()
            if len(body) != response["ContentLength"]:
                raise Corrupt(f"{len(body)} bytes where the store sent {response['ContentLength']}")
            return body

        result: bytes = self._call("read", key, read)
        return result

    def write_bytes(self, key: str, data: bytes) -> None:
        self._call("write", key, lambda: self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data))

    def copy(self, src_key: str, dst_key: str) -> None:
        # Managed copy: server-side, multipart above the threshold; no bytes pass through the pod.
        source = {"Bucket": self.bucket, "Key": self._key(src_key)}
        self._call("copy", dst_key, lambda: self.client.copy(source, self.bucket, self._key(dst_key), Config=TRANSFER))

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._key(k)} for k in keys[start : start + 1000]]
            self._call(
                "delete",
                keys[start],
                lambda batch=batch: self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                ),
            )
