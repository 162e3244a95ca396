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

from finetune_api.pod_contract import MANIFEST

from ..storage import Store

log = logging.getLogger(__name__)
STAGING = ".staging"
GATE_NOTE = "GATE_NOT_MET.json"


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
    clean_staging(store)
    return str(store.uri.join(MANIFEST))


def clean_staging(store: Store) -> None:
    """Remove staged files of this and of earlier interrupted publishes; keep gate-rejected runs for inspection."""
    runs: dict[str, list[str]] = {}
    for obj in store.list_objects(STAGING + "/"):
        run = obj.key.split("/", 2)[1]
        runs.setdefault(run, []).append(obj.key)
    for keys in runs.values():
        if not any(k.endswith("/" + GATE_NOTE) for k in keys):
            store.delete(keys)


def read_manifest(store: Store) -> dict[str, Any] | None:
    if not store.exists(MANIFEST):
        return None
    data: dict[str, Any] = json.loads(store.read_bytes(MANIFEST))
    return data
