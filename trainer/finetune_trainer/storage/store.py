"""The Store interface and the local-filesystem store; `open_store` picks one for a URI."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from finetune_api.spec.storage import S3Spec
from finetune_api.storage_uri import StorageUri, parse_uri

from ..errors import ConfigError, StorageError


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the listed prefix
    size: int
    etag: str = ""


class Store(Protocol):
    """Operations on one location (an s3:// prefix or a directory). Keys are relative to it."""

    uri: StorageUri

    def list_objects(self, prefix: str = "") -> list[ObjectInfo]: ...
    def exists(self, key: str) -> bool: ...
    def download(self, key: str, dest: Path) -> None: ...
    def download_all(self, dest: Path, prefix: str = "", keys: list[str] | None = None) -> list[Path]: ...
    def upload(self, src: Path, key: str) -> None: ...
    def upload_all(self, src_dir: Path, prefix: str = "") -> list[str]: ...
    def read_bytes(self, key: str) -> bytes: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def copy(self, src_key: str, dst_key: str) -> None: ...
    def delete(self, keys: list[str]) -> None: ...


class LocalStore:
    """A directory. Writes go to a temporary name and are renamed, so a reader never sees half a file."""

    def __init__(self, uri: StorageUri) -> None:
        self.uri = uri
        self.root = Path(os.path.expanduser(uri.key))

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve() if key else self.root.resolve()
        if self.root.resolve() not in (path, *path.parents):
            raise StorageError(f"{key!r} escapes {self.root}")
        return path

    def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        base = self._path(prefix)
        if base.is_file():
            return [ObjectInfo(prefix, base.stat().st_size)]
        if not base.is_dir():
            return []
        out = []
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.endswith(".partial"):
                out.append(ObjectInfo(path.relative_to(self.root).as_posix(), path.stat().st_size))
        return out

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def download(self, key: str, dest: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise StorageError(f"{self.uri.join(key)} does not exist")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)

    def download_all(self, dest: Path, prefix: str = "", keys: list[str] | None = None) -> list[Path]:
        wanted = keys if keys is not None else [o.key for o in self.list_objects(prefix)]
        out = []
        for key in wanted:
            target = dest / Path(key).relative_to(prefix) if prefix else dest / key
            self.download(key, target)
            out.append(target)
        return out

    def upload(self, src: Path, key: str) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".partial")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)

    def upload_all(self, src_dir: Path, prefix: str = "") -> list[str]:
        keys = []
        for path in sorted(p for p in src_dir.rglob("*") if p.is_file()):
            key = (
                f"{prefix.rstrip('/')}/{path.relative_to(src_dir).as_posix()}"
                if prefix
                else path.relative_to(src_dir).as_posix()
            )
            self.upload(path, key)
            keys.append(key)
        return keys

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise StorageError(f"{self.uri.join(key)} does not exist")
        return path.read_bytes()

    def write_bytes(self, key: str, data: bytes) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".partial")
        tmp.write_bytes(data)
        os.replace(tmp, dest)

    def copy(self, src_key: str, dst_key: str) -> None:
        self.upload(self._path(src_key), dst_key)

    def delete(self, keys: list[str]) -> None:
        root = self.root.resolve()
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            # Object stores have no folders: drop the ones left empty, as a listing would show.
            for parent in path.parents:
                if parent == root or not parent.is_dir() or any(parent.iterdir()):
                    break
                parent.rmdir()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_store(uri: str, s3: S3Spec | None = None) -> Store:
    """The store for a location: an s3:// prefix, or a local/mounted path."""
    parsed = parse_uri(uri)
    if parsed.kind == "s3":
        from .s3 import S3Store

        return S3Store(parsed, s3)
    if parsed.kind == "path":
        return LocalStore(parsed)
    raise ConfigError(f"{uri!r} is not a storage location the trainer can read (s3:// or a path)")
