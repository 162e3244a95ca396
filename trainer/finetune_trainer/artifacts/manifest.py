"""manifest.json: every file with sha256 and size, plus lineage. Written last: no manifest, no model."""

from __future__ import annotations

import importlib.metadata
import platform
import time
from pathlib import Path
from typing import Any

from finetune_api.pod_contract import MANIFEST

from ..storage.store import sha256_file

LIBRARIES = ("torch", "transformers", "peft", "accelerate", "finetune-operator")


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["python"] = platform.python_version()
    return out


def build_manifest(folder: Path, lineage: dict[str, Any]) -> dict[str, Any]:
    files = [
        {"path": p.relative_to(folder).as_posix(), "size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    ]
    return {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuneOutput",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": files,
        "libraries": library_versions(),
        **lineage,
    }


def verify(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Files that are missing or differ from the manifest (empty when the output is intact)."""
    bad = []
    for entry in manifest["files"]:
        path = folder / entry["path"]
        if not path.is_file() or path.stat().st_size != entry["size"] or sha256_file(path) != entry["sha256"]:
            bad.append(entry["path"])
    return bad
