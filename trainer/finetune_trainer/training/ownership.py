"""Checkpoints and outputs belong to the run that wrote them.

A run is identified by a fingerprint of its job, its resolved spec (less what only schedules it)
and the hashes of its data and model files. The checkpoint prefix records its owner in OWNER.json
and each checkpoint marker repeats the fingerprint; the output's manifest.json records it in its
lineage. A restarted pod of the same run resumes; a different run (another job, or this job with a
changed spec or data) pointed at the same prefix is refused before it trains, because resuming
would continue someone else's training and its manifest would be taken for this run's.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from finetune_api.pod_contract import MANIFEST
from finetune_api.resolve import default_checkpoint_uri
from finetune_api.resolved import ResolvedJob
from finetune_api.v1alpha1.job import FineTuneJob

from ..errors import ConfigError
from ..storage import Store, open_store
from .checkpoints import CheckpointStore

OWNER = "OWNER.json"
# Fields that decide where and when a run is scheduled, not what it computes: changing them keeps the run.
SCHEDULING_ONLY = {"suspend", "scheduling", "ttl_after_finished", "max_runtime"}


def run_fingerprint(job: FineTuneJob, data_hashes: dict[str, str], model_etags: dict[str, str]) -> str:
    spec = job.spec.model_dump(by_alias=True, exclude_none=True, mode="json", exclude=SCHEDULING_ONLY)
    body = {
        "job": f"{job.metadata.namespace or 'default'}/{job.metadata.name}",
        "spec": spec,
        "data": data_hashes,
        "model": model_etags,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def job_label(job: FineTuneJob) -> str:
    return f"{job.metadata.namespace or 'default'}/{job.metadata.name}"


def _foreign(where: str, what: str, owner: dict[str, Any] | None, job: str, field: str) -> ConfigError:
    if owner is None:
        whose = "a run that recorded no fingerprint"
    elif owner.get("job") == job:
        whose = f"an earlier run of {job} with a different spec or data (fingerprint {owner.get('fingerprint')})"
    else:
        whose = f"job {owner.get('job')}"
    return ConfigError(
        f"{where} holds {what} of {whose}, left alone: this run must not resume or replace it. Give this job "
        f"its own {field} (or delete that prefix if the old run is no longer needed)"
    )


def claim_checkpoints(store: Store, fingerprint: str, job: str, field: str) -> None:
    """Make the checkpoint prefix this run's, or refuse: it is empty, or it already holds this run's."""
    if store.exists(OWNER):
        owner = json.loads(store.read_bytes(OWNER))
        if owner.get("fingerprint") == fingerprint:
            return
        raise _foreign(str(store.uri), "checkpoints", owner, job, field)
    if any(o.key != OWNER for o in store.list_objects()):
        raise _foreign(str(store.uri), "checkpoints", None, job, field)
    # Every rank may get here at once; they write the same bytes.
    store.write_bytes(OWNER, json.dumps({"fingerprint": fingerprint, "job": job}).encode())


def check_output(store: Store, fingerprint: str, job: str) -> None:
    """An output prefix holding another run's manifest is refused, so that manifest is never read as ours."""
    if not store.exists(MANIFEST):
        return
    manifest = json.loads(store.read_bytes(MANIFEST))
    if manifest.get("fingerprint") == fingerprint:
        return  # this very run published already (a pod restarted after its publish)
    meta = manifest.get("job") or {}
    owner = (
        {"fingerprint": manifest["fingerprint"], "job": f"{meta.get('namespace') or 'default'}/{meta.get('name')}"}
        if manifest.get("fingerprint")
        else None
    )
    raise _foreign(str(store.uri), "the published output (manifest.json)", owner, job, "spec.output.uri")


def claim_run(job: ResolvedJob, data_hashes: dict[str, str], model_etags: dict[str, str]) -> CheckpointStore:
    """This run's checkpoint store, once the checkpoint and output prefixes are known to be this run's."""
    spec = job.spec
    fingerprint = run_fingerprint(job, data_hashes, model_etags)
    output = open_store(spec.output.uri, spec.s3)
    ckpt_uri = spec.output.checkpoint_uri
    store = open_store(ckpt_uri, spec.s3)
    # The field to change: the output prefix, unless checkpoints were sent somewhere of their own.
    field = "spec.output.uri" if ckpt_uri == default_checkpoint_uri(spec.output.uri) else "spec.output.checkpointUri"
    check_output(output, fingerprint, job_label(job))  # first: a refused run must claim nothing
    claim_checkpoints(store, fingerprint, job_label(job), field)
    return CheckpointStore(store, spec.output.keep_checkpoints, fingerprint)
