"""Publishing: upload to a staging prefix, copy into place, write manifest.json last.

Readers treat an output prefix without manifest.json as incomplete. A rerun first removes a stale
manifest, so files being replaced are never described by an old one. A run that fails its gate
leaves its files under the staging prefix and no manifest.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..storage import Store
from .manifest import MANIFEST

log = logging.getLogger(__name__)
STAGING = ".staging"


def stage(store: Store, folder: Path, run_id: str) -> str:
    prefix = f"{STAGING}/{run_id}"
    store.upload_all(folder, prefix)
    return prefix


def promote(store: Store, staging_prefix: str, manifest: dict[str, Any]) -> str:
    """Copy staged files into the output prefix, then write the manifest; returns the manifest's URI."""
    if store.exists(MANIFEST):
        store.delete([MANIFEST])
    for entry in manifest["files"]:
        store.copy(f"{staging_prefix}/{entry['path']}", entry["path"])
    store.write_bytes(MANIFEST, json.dumps(manifest, indent=2).encode())
    staged = [o.key for o in store.list(staging_prefix + "/")]
    store.delete(staged)
    return str(store.uri.join(MANIFEST))


def read_manifest(store: Store) -> dict[str, Any] | None:
    if not store.exists(MANIFEST):
        return None
    data: dict[str, Any] = json.loads(store.read_bytes(MANIFEST))
    return data
