"""An s3:// prefix through boto3: parallel multipart transfers, credentials from the standard chain.

The endpoint comes from spec.s3.endpoint, else AWS_ENDPOINT_URL (boto3 reads it itself). Credentials
are never passed in: the environment (from the Secret), the pod's web identity (IRSA / workload
identity) or the local profile, as boto3's chain finds them.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from finetune_api.redact import WHERE_CREDENTIALS_GO, has_userinfo, redact
from finetune_api.spec.storage import S3Spec
from finetune_api.storage_uri import StorageUri

from ..errors import ConfigError, StorageError
from .store import ObjectInfo

MiB = 1 << 20
TRANSFER = TransferConfig(multipart_threshold=64 * MiB, multipart_chunksize=64 * MiB, max_concurrency=8)
PARALLEL_FILES = 8


def _client(spec: S3Spec | None) -> Any:
    config = Config(
        retries={"max_attempts": 8, "mode": "adaptive"},
        s3={"addressing_style": spec.addressing_style.value if spec else "auto"},
        max_pool_connections=PARALLEL_FILES * 8,
    )
    endpoint = (spec.endpoint if spec else None) or os.environ.get("AWS_ENDPOINT_URL") or None
    if endpoint and has_userinfo(endpoint):
        source = "spec.s3.endpoint" if spec and spec.endpoint else "AWS_ENDPOINT_URL"
        raise ConfigError(f"{source} ({redact(endpoint)}) carries credentials in the URL; {WHERE_CREDENTIALS_GO}")
    region = (spec.region if spec else None) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region or "us-east-1", config=config)


def _explain(exc: Exception, what: str) -> StorageError:
    if isinstance(exc, NoCredentialsError):
        return StorageError(
            f"{what}: no S3 credentials found; set spec.s3.secretRef, give the pod a ServiceAccount with an IAM role, "
            "or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY locally"
        )
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        hints = {
            "AccessDenied": "the credentials may not read/write this location; check the bucket policy or IAM role",
            "InvalidAccessKeyId": "the access key id is unknown here; check the Secret and spec.s3.endpoint",
            "SignatureDoesNotMatch": "the secret access key is wrong; check the Secret",
            "NoSuchBucket": "the bucket does not exist; create it or fix the URI",
            "NoSuchKey": "the object does not exist; fix the URI",
            "404": "the object does not exist; fix the URI",
            "403": "access denied; check the credentials and policy",
        }
        return StorageError(f"{what}: {code} ({hints.get(code, exc.response.get('Error', {}).get('Message', ''))})")
    return StorageError(f"{what}: {type(exc).__name__}: {exc}")


class S3Store:
    def __init__(self, uri: StorageUri, spec: S3Spec | None) -> None:
        self.uri = uri
        self.bucket = uri.bucket
        self.base = uri.key
        self.client = _client(spec)

    def _key(self, key: str) -> str:
        if not key:
            return self.base
        return f"{self.base.rstrip('/')}/{key}" if self.base else key

    def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        full = self._key(prefix)
        if full and not full.endswith("/") and not prefix and self.uri.is_prefix:
            full += "/"
        out = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    rel = obj["Key"][len(self.base) :].lstrip("/") if self.base else obj["Key"]
                    out.append(ObjectInfo(rel, obj["Size"], obj.get("ETag", "").strip('"')))
        except (ClientError, BotoCoreError) as exc:
            raise _explain(exc, f"listing {self.uri.join(prefix)}") from exc
        return out

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise _explain(exc, f"checking {self.uri.join(key)}") from exc

    def download(self, key: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".partial")
        try:
            self.client.download_file(self.bucket, self._key(key), str(tmp), Config=TRANSFER)
        except (ClientError, BotoCoreError) as exc:
            tmp.unlink(missing_ok=True)
            raise _explain(exc, f"downloading s3://{self.bucket}/{self._key(key)}") from exc
        os.replace(tmp, dest)

    def download_all(self, dest: Path, prefix: str = "", keys: list[str] | None = None) -> list[Path]:
        wanted = keys if keys is not None else [o.key for o in self.list_objects(prefix)]
        targets = [dest / (k[len(prefix) :].lstrip("/") if prefix else k) for k in wanted]
        with ThreadPoolExecutor(PARALLEL_FILES) as pool:
            list(pool.map(self.download, wanted, targets))
        return targets

    def upload(self, src: Path, key: str) -> None:
        try:
            self.client.upload_file(str(src), self.bucket, self._key(key), Config=TRANSFER)
        except (ClientError, BotoCoreError) as exc:
            raise _explain(exc, f"uploading to s3://{self.bucket}/{self._key(key)}") from exc

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
        try:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise _explain(exc, f"reading s3://{self.bucket}/{self._key(key)}") from exc
        return body

    def write_bytes(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except (ClientError, BotoCoreError) as exc:
            raise _explain(exc, f"writing s3://{self.bucket}/{self._key(key)}") from exc

    def copy(self, src_key: str, dst_key: str) -> None:
        # Managed copy: server-side, multipart above the threshold; no bytes pass through the pod.
        try:
            self.client.copy(
                {"Bucket": self.bucket, "Key": self._key(src_key)}, self.bucket, self._key(dst_key), Config=TRANSFER
            )
        except (ClientError, BotoCoreError) as exc:
            raise _explain(exc, f"copying to s3://{self.bucket}/{self._key(dst_key)}") from exc

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._key(k)} for k in keys[start : start + 1000]]
            try:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except (ClientError, BotoCoreError) as exc:
                raise _explain(exc, f"deleting under {self.uri}") from exc
