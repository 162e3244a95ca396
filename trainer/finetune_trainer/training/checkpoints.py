"""Checkpoints in the object store: uploaded whole, then marked complete; the newest complete one resumes.

The marker (COMPLETE.json, written last) holds the step and the run's fingerprint (ownership.py);
resume never parses folder names, never picks a checkpoint whose upload was cut off, and never one
of another run; pruning leaves other runs' checkpoints alone.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..storage import Store

log = logging.getLogger(__name__)
MARKER = "COMPLETE.json"


@dataclass(frozen=True)
class StoredCheckpoint:
    prefix: str
    step: int
    fingerprint: str | None = None


class CheckpointStore:
    """`fingerprint`: the run these checkpoints belong to; None only to inspect a store (tests, tools)."""

    def __init__(self, store: Store, keep: int, fingerprint: str | None = None) -> None:
        self.store = store
        self.keep = keep
        self.fingerprint = fingerprint

    def complete(self) -> list[StoredCheckpoint]:
        found = []
        for obj in self.store.list_objects():
            if obj.key.endswith("/" + MARKER):
                prefix = obj.key[: -len(MARKER) - 1]
                meta = json.loads(self.store.read_bytes(obj.key))
                found.append(StoredCheckpoint(prefix, int(meta["step"]), meta.get("fingerprint")))
        return sorted(found, key=lambda c: c.step)

    def mine(self) -> list[StoredCheckpoint]:
        return [c for c in self.complete() if self.fingerprint is None or c.fingerprint == self.fingerprint]

    def save(self, local_dir: Path, step: int) -> str:
        prefix = f"step-{step:09d}"
        files = self.store.upload_all(local_dir, prefix)
        marker = {"step": step, "files": len(files), "fingerprint": self.fingerprint}
        self.store.write_bytes(f"{prefix}/{MARKER}", json.dumps(marker).encode())
        self.prune()
        return str(self.store.uri.join(prefix))

    def prune(self) -> None:
        complete = self.mine()
        for old in complete[: max(0, len(complete) - self.keep)]:
            keys = [o.key for o in self.store.list_objects(old.prefix + "/")]
            # Drop the marker first: a half-deleted checkpoint must never look complete.
            self.store.delete([k for k in keys if k.endswith(MARKER)])
            self.store.delete([k for k in keys if not k.endswith(MARKER)])

    def restore_newest(self, dest_root: Path) -> tuple[Path, int] | None:
        complete = self.mine()
        if not complete:
            return None
        newest = complete[-1]
        dest = dest_root / f"checkpoint-{newest.step}"
        if dest.exists():
            shutil.rmtree(dest)
        self.store.download_all(dest, prefix=newest.prefix + "/")
        (dest / MARKER).unlink(missing_ok=True)
        log.info("resuming from %s (step %d)", self.store.uri.join(newest.prefix), newest.step)
        return dest, newest.step
