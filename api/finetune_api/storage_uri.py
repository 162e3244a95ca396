"""Parsing of the storage URIs the spec accepts; shared by validation and the trainer's storage layer."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Literal

DATA_EXTENSIONS = frozenset({".jsonl", ".json", ".csv", ".parquet"})
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")

Kind = Literal["s3", "path", "hub", "ambiguous"]


@dataclass(frozen=True)
class StorageUri:
    raw: str
    kind: Kind
    bucket: str = ""
    key: str = ""  # s3 key, or the local path

    @property
    def is_prefix(self) -> bool:
        return self.raw.endswith("/")

    @property
    def is_absolute(self) -> bool:
        return self.kind == "path" and self.key.startswith("/")

    @property
    def extension(self) -> str:
        return posixpath.splitext(self.key.rstrip("/"))[1].lower()

    def _parts(self) -> tuple[str, ...]:
        return (self.bucket, *[p for p in posixpath.normpath(self.key or ".").split("/") if p not in ("", ".")])

    def contains(self, other: StorageUri) -> bool:
        """Whether `other` lies at or under this location (same store)."""
        if self.kind != other.kind:
            return False
        mine, theirs = self._parts(), other._parts()
        return theirs[: len(mine)] == mine

    def folder(self) -> StorageUri:
        """The folder holding this object (itself when it is a prefix)."""
        if self.is_prefix:
            return self
        parent = posixpath.dirname(self.key.rstrip("/"))
        if self.kind == "s3":
            return StorageUri(
                f"s3://{self.bucket}/{parent}/" if parent else f"s3://{self.bucket}/", "s3", self.bucket, parent
            )
        return StorageUri((parent or ".") + "/", self.kind, key=parent or ".")

    def join(self, *names: str) -> StorageUri:
        key = posixpath.join(self.key, *names) if self.key else posixpath.join(*names)
        raw = f"s3://{self.bucket}/{key}" if self.kind == "s3" else key
        return StorageUri(raw=raw, kind=self.kind, bucket=self.bucket, key=key)

    def __str__(self) -> str:
        return self.raw


def parse_uri(uri: str) -> StorageUri:
    if uri.startswith("s3://"):
        rest = uri[len("s3://") :]
        bucket, _, key = rest.partition("/")
        return StorageUri(uri, "s3", bucket=bucket, key=key)
    if uri.startswith(("/", "./", "../", "~")):
        return StorageUri(uri, "path", key=uri)
    if _HUB_ID.match(uri) and not posixpath.splitext(uri)[1]:
        return StorageUri(uri, "hub", key=uri)
    if "/" in uri or posixpath.splitext(uri)[1]:
        return StorageUri(uri, "path", key=uri)
    return StorageUri(uri, "ambiguous", key=uri)
