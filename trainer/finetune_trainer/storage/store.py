"""The Store interface and the local-filesystem store."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from finetune_api.storage_uri import StorageUri, parse_uri

from ..errors import StorageError


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


def link_boundary(root: Path) -> Path:
    """The folder a key (or a link in the folder) may resolve into: the folder itself, or for a snapshot
    of a Hugging Face cache (<repo>/snapshots/<rev>/, whose files link to <repo>/blobs/) that repo folder."""
    resolved = root.resolve()
    if resolved.parent.name == "snapshots" and (resolved.parent.parent / "blobs").is_dir():
        return resolved.parent.parent
    return resolved


@contextlib.contextmanager
def os_errors(where: object, doing: str) -> Iterator[None]:
    """A failing file operation as the StorageError it is (a full disk, a permission, a file in the way)."""
    try:
        yield
    except OSError as exc:
        raise StorageError(
            f"{where}: cannot {doing} ({exc.strerror or exc}); check the location and its permissions"
        ) from exc


class LocalStore:
    """A directory. Writes go to a temporary name and are renamed, so a reader never sees half a file."""

    def __init__(self, uri: StorageUri) -> None:
        self.uri = uri
        self.root = Path(os.path.expanduser(uri.key))

    def _path(self, key: str) -> Path:
        given = self.root / key if key else self.root
        path = given.resolve()
        boundary = link_boundary(self.root)
        if boundary not in (path, *path.parents):
            if given.is_symlink() or any(p.is_symlink() for p in given.parents):
                raise StorageError(
                    f"{self.uri.join(key)} is a link to {path}, outside {self.root}; "
                    "copy the file into the folder rather than linking to it"
                )
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
        with os_errors(self.uri.join(key), "read it"):
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
        with os_errors(self.uri.join(key), "write it"):
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
        with os_errors(self.uri.join(key), "write it"):
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


def check_output_location(field: str, uri: str) -> None:
    """A local output must be a folder (or not exist yet): an existing file there, or on its path, is refused
    before any work is done, rather than after training when the first write fails."""
    parsed = parse_uri(uri)
    if parsed.kind != "path":
        return
    path = Path(os.path.expanduser(parsed.key))
    for candidate in (path, *path.parents):
        if candidate.exists() and not candidate.is_dir():
            what = "is an existing file" if candidate == path else f"lies under {candidate}, an existing file"
            raise StorageError(
                f"{field}: {uri} {what}, but the output is a folder; choose a folder path (created if missing)"
            )
        if candidate.exists():
            return
