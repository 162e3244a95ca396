"""`open_store` picks the store for a location: S3 (boto3, imported only when needed) or a local path."""

from __future__ import annotations

from finetune_api.storage_uri import parse_uri
from finetune_api.v1alpha1.storage import S3Spec

from ..errors import ConfigError
from .store import LocalStore, Store


def open_store(uri: str, s3: S3Spec | None = None) -> Store:
    """The store for a location: an s3:// prefix, or a local/mounted path."""
    parsed = parse_uri(uri)
    if parsed.kind == "s3":
        from .s3 import S3Store  # boto3 is slow to import; a local run never needs it

        return S3Store(parsed, s3)
    if parsed.kind == "path":
        return LocalStore(parsed)
    raise ConfigError(f"{uri!r} is not a storage location the trainer can read (s3:// or a path)")
