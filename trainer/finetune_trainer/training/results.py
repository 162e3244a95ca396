"""The end of a run: the metrics record, the output folder (model, card, curve, resolved job) and publishing."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from finetune_api.measurements import RunMeasurements, manifest_metrics
from finetune_api.pod_contract import ENV_IMAGE, MANIFEST
from finetune_api.serving import ADAPTER_FOLDER, MODEL_FOLDER, Servable
from finetune_api.v1alpha1.enums import SaveMode
from finetune_api.v1alpha1.job import FineTuneJob

from ..artifacts import publish
from ..artifacts.manifest import build_manifest
from ..artifacts.report import loss_curve, model_card
from ..artifacts.serving import plan_output, serving_section
from ..errors import GateNotMet
from ..storage import open_store
from ..storage.verification import VERIFIED
from .context import RunContext


@dataclass
class RunResult:
    output_uri: str
    manifest_uri: str | None
    measured: RunMeasurements
    local_output: Path | None = None


def resolved_spec(job: FineTuneJob) -> dict[str, Any]:
    """The resolved spec as metrics.json and the manifest record it (camelCase, as written in YAML)."""
    spec: dict[str, Any] = job.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    return spec


def metrics_json(job: FineTuneJob, measured: RunMeasurements) -> str:
    """metrics.json: everything the run measured, and the resolved spec that produced it."""
    return json.dumps({**measured.model_dump(mode="json"), "spec": resolved_spec(job)}, indent=2)


@dataclass(frozen=True)
class Saved:
    """The output folder written locally, and how each of its weights folders is served."""

    folder: Path
    serving: list[Servable]


def save_output(ctx: RunContext, model: Any, adapter: bool, measured: RunMeasurements, out: Path) -> Saved:
    """Everything published, written locally first: weights, metrics.json, the resolved job, card and curve."""
    out.mkdir(parents=True, exist_ok=True)
    job, tokenizer = ctx.job, ctx.tokenizer
    save, spec = job.spec.output.save, ctx.spec
    if not adapter:
        _save(model, tokenizer, out / MODEL_FOLDER)
    if adapter and save in (SaveMode.ADAPTER, SaveMode.BOTH):
        _save(model, tokenizer, out / ADAPTER_FOLDER)
    if adapter and save in (SaveMode.MERGED, SaveMode.BOTH):
        _save(model.merge_and_unload(), tokenizer, out / MODEL_FOLDER)  # after the adapter: merging unloads it
    (out / "metrics.json").write_text(metrics_json(job, measured))
    job_yaml = yaml.safe_dump(
        job.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"status"}), sort_keys=False
    )
    (out / "finetunejob.yaml").write_text(job_yaml)
    name = job.metadata.name
    few = measured.few_shot.scores if measured.few_shot else {}
    levels = {"zero-shot": measured.baseline.get("eval_loss"), "few-shot": few.get("eval_loss")}
    loss_curve(measured.loss_history, out / "loss_curve.png", f"{name}: {spec.method.type} on {spec.task.type}", levels)
    plan = plan_output(out, spec)
    serving = serving_section(plan, name, spec.output.uri, spec.model.uri)
    (out / "README.md").write_text(model_card(name, job_yaml, measured, spec.model.uri, serving))
    return Saved(out, plan)


def _save(model: Any, tokenizer: Any, folder: Path) -> None:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def publish_output(
    ctx: RunContext, saved: Saved, measured: RunMeasurements, etags: dict[str, str], fingerprint: str | None
) -> RunResult:
    """Stage, then (gate permitting) promote with the manifest written last."""
    job, spec, gate, out = ctx.job, ctx.spec, measured.gate, saved.folder
    store = open_store(spec.output.uri, spec.s3)
    lineage = {
        "job": {"name": job.metadata.name, "namespace": job.metadata.namespace},
        "baseModel": {
            "uri": spec.model.uri,
            "tokenizerUri": spec.model.tokenizer_uri,
            "revision": spec.model.revision,
            "etags": etags,
        },
        "datasets": ctx.data.hashes,
        # What each input fetched from S3 was checked against (size, ETag), by URI.
        "verifiedDownloads": VERIFIED.under(
            spec.model.uri, spec.model.tokenizer_uri, spec.dataset.train, spec.dataset.eval
        ),
        "seed": spec.training.seed,
        "method": str(spec.method.type),
        "metrics": manifest_metrics(measured),
        "serving": [servable.record() for servable in saved.serving],
        "image": os.environ.get(ENV_IMAGE, ""),
        "fingerprint": fingerprint,  # whose output this is (training/ownership.py)
        "spec": resolved_spec(job),
    }
    manifest = build_manifest(out, lineage)
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    staging = publish.stage(store, out, run_id)
    if gate is not None and not gate.passed:
        store.write_bytes(f"{staging}/{publish.GATE_NOTE}", gate.model_dump_json(indent=2).encode())
        raise GateNotMet(f"{gate.explanation}; artifacts kept at {store.uri.join(staging)} without a manifest")
    manifest_uri = publish.promote(store, staging, manifest)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))  # a local copy, for the tracking server
    return RunResult(spec.output.uri, manifest_uri, measured, out)
