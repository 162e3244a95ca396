"""One reconcile of a FineTuneExperiment: validate every variant -> create the next FineTuneJobs -> status.

Level-triggered like the FineTuneJob's: each call lists what exists and plans from it (plan.py), so
it can be repeated, interrupted or run by a freshly restarted operator with the same result.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, cast

import kopf

from finetune_api.experiment.expand import Variant, compared_metric, report_uri
from finetune_api.pod_contract import Owner, owned_part, status_patch
from finetune_api.v1alpha1.enums import FailureClass, Metric, Phase
from finetune_api.v1alpha1.experiment import FineTuneExperiment
from finetune_api.v1alpha1.experiment_status import FineTuneExperimentStatus, ReportStatus
from finetune_api.validation.experiment import check_experiment, rendered_errors

from ..events import NORMAL, WARNING
from ..kube import KubeApi
from ..metrics import OPERATOR_METRICS
from ..resource import parse_status
from ..settings import OperatorSettings
from . import plan, report_job

log = logging.getLogger(__name__)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def document(body: dict[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    doc: dict[str, Any] = {k: body[k] for k in ("apiVersion", "kind", "spec") if k in body}
    doc["metadata"] = {"name": meta["name"], "namespace": meta.get("namespace")}
    if meta.get("labels"):
        doc["metadata"]["labels"] = dict(meta["labels"])
    return doc


def preflight(body: dict[str, Any]) -> tuple[FineTuneExperiment | None, list[Variant], list[str]]:
    """Every variant validated as the FineTuneJob it becomes, before any is created."""
    checked = check_experiment(document(body))
    errors = rendered_errors(checked)
    return (None, [], errors) if errors else (checked.experiment, checked.variants, [])


def reject(api: KubeApi, body: dict[str, Any], problems: list[str]) -> None:
    meta = body["metadata"]
    message = "; ".join(problems)[:4000]
    status = FineTuneExperimentStatus(
        phase=Phase.FAILED,
        message=f"{FailureClass.INVALID_SPEC}: {message}",
        observed_generation=meta.get("generation"),
        completion_time=now(),
    )
    api.patch_experiment_status(meta["namespace"], meta["name"], status_patch(status, Owner.OPERATOR))
    api.record_event(body, WARNING, "InvalidSpec", message)


def _report_phase(job: dict[str, Any] | None) -> Phase | None:
    if job is None:
        return None
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return Phase.SUCCEEDED if cond["type"] == "Complete" else Phase.FAILED
    return Phase.RUNNING


def reconcile(api: KubeApi, body: dict[str, Any], settings: OperatorSettings) -> Phase:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    experiment, variants, problems = preflight(body)
    if experiment is None:
        reject(api, body, problems)
        log.info("[%s/%s] experiment rejected: %s", namespace, name, "; ".join(problems))
        return Phase.FAILED
    experiment = experiment.model_copy(
        update={"metadata": experiment.metadata.model_copy(update={"namespace": namespace})}
    )
    variants = [_in_namespace(v, namespace) for v in variants]
    jobs = api.experiment_jobs(namespace, name)
    for variant in plan.to_start(variants, jobs, experiment.spec.max_parallel):
        obj = variant.document
        kopf.adopt(obj, owner=cast(kopf.Body, body))
        created = api.create(obj)
        # 409 (None): it exists already, e.g. created before a restart; the listing shows it next time.
        jobs[variant.job_name] = created or api.get_finetunejob(namespace, variant.job_name) or obj
        if created is not None:
            api.record_event(body, NORMAL, "VariantCreated", f"FineTuneJob {variant.job_name} created")
    comparison = plan.compare(variants, jobs, Metric(compared_metric(experiment)))
    report = _ensure_report(api, body, experiment, comparison, settings) if comparison.finished else None
    return _write_status(api, body, experiment, comparison, report)


def _in_namespace(variant: Variant, namespace: str) -> Variant:
    doc = {**variant.document, "metadata": {**variant.document["metadata"], "namespace": namespace}}
    return Variant(variant.name, variant.job_name, variant.changes, doc)


def _ensure_report(
    api: KubeApi,
    body: dict[str, Any],
    experiment: FineTuneExperiment,
    comparison: plan.Comparison,
    settings: OperatorSettings,
) -> dict[str, Any] | None:
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    existing = api.get_job(namespace, report_job.report_name(name))
    if existing is not None:
        return existing
    payload = report_job.comparison_payload(comparison.rows, Metric(compared_metric(experiment)), comparison.best)
    objects = [report_job.config_map(experiment, payload), report_job.job(experiment, settings)]
    for obj in objects:
        kopf.adopt(obj, owner=cast(kopf.Body, body))
    api.apply(objects[0])
    created = api.create(objects[1])
    if created is not None:
        api.record_event(body, NORMAL, "ReportStarted", f"Job {report_job.report_name(name)} writes the comparison")
    return created or api.get_job(namespace, report_job.report_name(name))


def _write_status(
    api: KubeApi,
    body: dict[str, Any],
    experiment: FineTuneExperiment,
    comparison: plan.Comparison,
    report: dict[str, Any] | None,
) -> Phase:
    """The experiment's status from its variants and report step; returns the phase it wrote."""
    phase, message = plan.experiment_phase(comparison, _report_phase(report))
    meta = body["metadata"]
    old = parse_status(body.get("status"), FineTuneExperimentStatus, meta["name"])
    for r in comparison.rows:
        values = (r.metric, None if r.trainable_parameters is None else float(r.trainable_parameters), r.train_seconds)
        OPERATOR_METRICS.set_variant(meta["namespace"], meta["name"], r.name, compared_metric(experiment), values)
    counts = comparison.counts
    status = FineTuneExperimentStatus(
        phase=phase,
        message=message[:4096],
        observed_generation=meta.get("generation"),
        start_time=(old.start_time or now()) if phase != Phase.PENDING else None,
        completion_time=(old.completion_time or now()) if phase in plan.TERMINAL else None,
        variant_count=counts.variant_count,
        running=counts.running,
        succeeded=counts.succeeded,
        failed=counts.failed,
        variants=comparison.rows,
        best=comparison.best,
        report=_report_status(experiment, comparison, report),
    )
    if old.phase != phase:
        api.record_event(body, WARNING if phase == Phase.FAILED else NORMAL, f"Experiment{phase.value}", message)
    # Every variant's event lands here; most change nothing, and an unchanged status is not written.
    patch = status_patch(status, Owner.OPERATOR)
    before = owned_part(old, Owner.OPERATOR)
    if any(before.get(key) != value for key, value in patch.items()):
        api.patch_experiment_status(meta["namespace"], meta["name"], patch)
    return phase


def _report_status(
    experiment: FineTuneExperiment, comparison: plan.Comparison, report: dict[str, Any] | None
) -> ReportStatus | None:
    if report is None:
        return None
    phase = _report_phase(report)
    promoted = experiment.spec.promote is not None and phase == Phase.SUCCEEDED and comparison.best is not None
    return ReportStatus(
        phase=phase,
        job_name=report["metadata"]["name"],
        uri=report_uri(experiment),
        promoted=experiment.spec.promote.uri if promoted and experiment.spec.promote else None,
    )
